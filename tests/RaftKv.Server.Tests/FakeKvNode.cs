using System.Collections.Concurrent;
using RaftKv.Node;
using RaftKv.Raft;

namespace RaftKv.Server.Tests;

/// <summary>
/// An in-memory <see cref="IKvNode"/> whose role, leader and failures tests set directly. Leader-only operations
/// throw NotLeader (with the configured leader) or NoLeader unless <see cref="Role"/> is Leader, as the real node does.
/// </summary>
internal sealed class FakeKvNode(string id = "fake") : IKvNode
{
    private long _index;
    private int _statusCalls;

    public string Id { get; } = id;
    public ConcurrentDictionary<string, string> Data { get; } = new();
    public Role Role { get; set; } = Role.Leader;
    public string? LeaderId { get; set; }
    public string? LeaderHttpAddress { get; set; }
    public string HttpAddress { get; set; } = "127.0.0.1:1";
    public ulong LastLogIndex { get; set; }
    public ulong CommitIndex { get; set; }
    public ulong AppliedIndex { get; set; }
    public List<ServerStatus> Servers { get; } = [];

    /// <summary>Called with the operation's name before it runs; a returned exception is thrown.</summary>
    public Func<string, Exception?>? Fail { get; set; }

    /// <summary>Awaited before each operation (e.g. to hang until cancelled).</summary>
    public Func<CancellationToken, Task>? Gate { get; set; }

    public ConcurrentQueue<(string Id, string Raft, string Http, bool Voter)> Joins { get; } = new();
    public ConcurrentQueue<string> Removes { get; } = new();
    public ConcurrentQueue<string?> Transfers { get; } = new();
    public ConcurrentQueue<ReadLevel> Reads { get; } = new();
    public ConcurrentQueue<IReadOnlyList<KeyValuePair<string, string>>> Sets { get; } = new();
    public int StatusCalls => Volatile.Read(ref _statusCalls);
    public bool Disposed { get; private set; }

    /// <summary>Completing it makes the node report that its raft loop failed.</summary>
    public TaskCompletionSource<string> Failure { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public Task<string> Failed => Failure.Task;

    public async Task<ulong> SetAsync(IReadOnlyList<KeyValuePair<string, string>> pairs, CancellationToken cancellationToken = default)
    {
        await EnterAsync("set", leaderOnly: true, cancellationToken);
        Sets.Enqueue(pairs);
        foreach (var (key, value) in pairs)
        {
            Data[key] = value;
        }
        return (ulong)Interlocked.Increment(ref _index);
    }

    public async Task<ulong> DeleteAsync(string key, CancellationToken cancellationToken = default)
    {
        await EnterAsync("delete", leaderOnly: true, cancellationToken);
        Data.TryRemove(key, out _);
        return (ulong)Interlocked.Increment(ref _index);
    }

    public async Task<string?> GetAsync(string key, ReadLevel level, CancellationToken cancellationToken = default)
    {
        await EnterAsync("get", leaderOnly: level != ReadLevel.None, cancellationToken);
        Reads.Enqueue(level);
        return Data.TryGetValue(key, out var value) ? value : null;
    }

    public async Task JoinAsync(JoinRequest request, CancellationToken cancellationToken = default)
    {
        await EnterAsync("join", leaderOnly: true, cancellationToken);
        Joins.Enqueue((request.Id, request.RaftAddress, request.HttpAddress, request.Voter));
    }

    public async Task RemoveAsync(string id, CancellationToken cancellationToken = default)
    {
        await EnterAsync("remove", leaderOnly: true, cancellationToken);
        if (!Servers.Any(s => s.Id == id))
        {
            throw new NodeException(NodeErrorKind.NotFound, $"node {id} is not a member");
        }
        Removes.Enqueue(id);
    }

    public async Task TransferLeadershipAsync(string? targetId, CancellationToken cancellationToken = default)
    {
        await EnterAsync("transfer", leaderOnly: true, cancellationToken);
        Transfers.Enqueue(targetId);
    }

    public async Task<ulong> SnapshotAsync(CancellationToken cancellationToken = default)
    {
        await EnterAsync("snapshot", leaderOnly: false, cancellationToken);
        return (ulong)Interlocked.Read(ref _index);
    }

    public async Task<NodeStatus> GetStatusAsync(CancellationToken cancellationToken = default)
    {
        Interlocked.Increment(ref _statusCalls);
        await EnterAsync("status", leaderOnly: false, cancellationToken);
        var leaderId = Role == Role.Leader ? Id : LeaderId;
        return new NodeStatus
        {
            Id = Id,
            RaftAddress = "raft-" + Id,
            HttpAddress = HttpAddress,
            Role = Role,
            Term = 3,
            LeaderId = leaderId,
            LeaderRaftAddress = leaderId is null ? null : "raft-" + leaderId,
            LeaderHttpAddress = Role == Role.Leader ? HttpAddress : LeaderHttpAddress,
            CommitIndex = CommitIndex,
            AppliedIndex = AppliedIndex,
            LastLogIndex = LastLogIndex,
            LastLogTerm = 3,
            LastSnapshotIndex = 0,
            LastSnapshotTerm = 0,
            ConfigurationIndex = 1,
            FsmPending = CommitIndex - Math.Min(CommitIndex, AppliedIndex),
            LastContact = Role == Role.Leader ? TimeSpan.Zero : TimeSpan.FromMilliseconds(3.5),
            Servers = Servers.ToList(),
            Keys = Data.Count,
            ClusterId = "fake-cluster",
            Membership = Membership,
            CatchUpTarget = CatchUpTarget ?? CommitIndex,
        };
    }

    /// <summary>What the status says of this node's standing.</summary>
    public Membership Membership { get; set; } = Membership.Voter;

    /// <summary>The leader's commit index when this node started (null: the node's own commit index).</summary>
    public ulong? CatchUpTarget { get; set; }

    public ValueTask DisposeAsync()
    {
        Disposed = true;
        return ValueTask.CompletedTask;
    }

    private async Task EnterAsync(string operation, bool leaderOnly, CancellationToken cancellationToken)
    {
        if (Gate is { } gate)
        {
            await gate(cancellationToken);
        }
        if (Fail?.Invoke(operation) is { } failure)
        {
            throw failure;
        }
        if (leaderOnly && Role != Role.Leader)
        {
            throw LeaderId is null && LeaderHttpAddress is null
                ? new NodeException(NodeErrorKind.NoLeader, "no leader: election in progress")
                : new NodeException(NodeErrorKind.NotLeader, "not the leader", LeaderId, LeaderHttpAddress);
        }
    }
}
