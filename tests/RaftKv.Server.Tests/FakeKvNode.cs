using System.Collections.Concurrent;
using RaftKv.Node;
using RaftKv.Node.Routing;
using RaftKv.Node.Runtime;
using RaftKv.Raft;

namespace RaftKv.Server.Tests;

/// <summary>
/// An in-memory <see cref="IKvNode"/> whose role, leader and failures tests set directly. Leader-only operations
/// throw NotLeader (with the configured leader) or NoLeader unless <see cref="Role"/> is Leader, as the real node does.
/// Calls are routed as the real node routes them: through a <see cref="LeaderRouter"/> that reads <see cref="Leader"/>
/// and forwards with whatever forwarder the server plugs in.
/// </summary>
internal sealed class FakeKvNode(string id = "fake") : IKvNode, IRoutedNode
{
    private const string WriteTimedOut = "timed out waiting for the write to commit; it may or may not have been applied";
    private long _index;
    private int _statusCalls;
    private int _viewReads;
    private LeaderRouter? _router;
    private Redirector? _redirecting;

    /// <summary>The request timeout the node enforces (RunningServer sets the server's).</summary>
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Called with the count each time routing reads the leader view (to change the view as time goes by).</summary>
    public Action<int>? OnLeaderViewRead { get; set; }

    private LeaderRouter Router => _router ??= new LeaderRouter(() => Leader, RequestTimeout, TimeProvider.System);

    public LeaderView Leader
    {
        get
        {
            OnLeaderViewRead?.Invoke(Interlocked.Increment(ref _viewReads));
            return Role == Role.Leader
                ? new LeaderView(IsSelf: true, Id, HttpAddress, IsMember: true)
                : new LeaderView(IsSelf: false, LeaderId, LeaderHttpAddress, IsMember: true);
        }
    }

    public void ForwardThrough(ILeaderForwarder forwarder) => Router.Forwarder = forwarder;

    public IKvNode Redirecting => _redirecting ??= new Redirector(this);

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

    public Task<ulong> SetAsync(IReadOnlyList<KeyValuePair<string, string>> pairs, CancellationToken cancellationToken = default) =>
        SetAsync(pairs, true, cancellationToken);

    private Task<ulong> SetAsync(IReadOnlyList<KeyValuePair<string, string>> pairs, bool mayForward, CancellationToken cancellationToken) =>
        Router.RouteAsync(new RoutedCall<ulong>(new ForwardedRequest(ForwardedOp.Set, Pairs: pairs), d => SetHereAsync(pairs, d.Token), r => r.Index, true, WriteTimedOut),
            mayForward, cancellationToken);

    private async Task<ulong> SetHereAsync(IReadOnlyList<KeyValuePair<string, string>> pairs, CancellationToken cancellationToken)
    {
        await EnterAsync("set", leaderOnly: true, cancellationToken);
        Sets.Enqueue(pairs);
        foreach (var (key, value) in pairs)
        {
            Data[key] = value;
        }
        return (ulong)Interlocked.Increment(ref _index);
    }

    public Task<ulong> DeleteAsync(string key, CancellationToken cancellationToken = default) => DeleteAsync(key, true, cancellationToken);

    private Task<ulong> DeleteAsync(string key, bool mayForward, CancellationToken cancellationToken) =>
        Router.RouteAsync(new RoutedCall<ulong>(new ForwardedRequest(ForwardedOp.Delete, Key: key), d => DeleteHereAsync(key, d.Token), r => r.Index, true, WriteTimedOut),
            mayForward, cancellationToken);

    private async Task<ulong> DeleteHereAsync(string key, CancellationToken cancellationToken)
    {
        await EnterAsync("delete", leaderOnly: true, cancellationToken);
        Data.TryRemove(key, out _);
        return (ulong)Interlocked.Increment(ref _index);
    }

    public Task<string?> GetAsync(string key, ReadLevel level, CancellationToken cancellationToken = default) => GetAsync(key, level, true, cancellationToken);

    private Task<string?> GetAsync(string key, ReadLevel level, bool mayForward, CancellationToken cancellationToken) =>
        level == ReadLevel.None
            ? GetHereAsync(key, level, cancellationToken)
            : Router.RouteAsync(new RoutedCall<string?>(new ForwardedRequest(ForwardedOp.Get, Key: key, Level: level), d => GetHereAsync(key, level, d.Token), r => r.Value,
                level != ReadLevel.Linearizable, "timed out waiting for the read to be confirmed"), mayForward, cancellationToken);

    private async Task<string?> GetHereAsync(string key, ReadLevel level, CancellationToken cancellationToken)
    {
        await EnterAsync("get", leaderOnly: level != ReadLevel.None, cancellationToken);
        Reads.Enqueue(level);
        return Data.TryGetValue(key, out var value) ? value : null;
    }

    public Task JoinAsync(JoinRequest request, CancellationToken cancellationToken = default) => JoinAsync(request, true, cancellationToken);

    private Task JoinAsync(JoinRequest request, bool mayForward, CancellationToken cancellationToken) =>
        Router.RouteAsync(new RoutedCall<ulong>(
            new ForwardedRequest(ForwardedOp.Join, Id: request.Id, RaftAddress: request.RaftAddress, HttpAddress: request.HttpAddress, Voter: request.Voter),
            async d => { await JoinHereAsync(request, d.Token); return 0UL; }, r => r.Index, true, WriteTimedOut), mayForward, cancellationToken);

    private async Task JoinHereAsync(JoinRequest request, CancellationToken cancellationToken)
    {
        await EnterAsync("join", leaderOnly: true, cancellationToken);
        Joins.Enqueue((request.Id, request.RaftAddress, request.HttpAddress, request.Voter));
    }

    public Task RemoveAsync(string id, CancellationToken cancellationToken = default) => RemoveAsync(id, true, cancellationToken);

    private Task RemoveAsync(string id, bool mayForward, CancellationToken cancellationToken) =>
        Router.RouteAsync(new RoutedCall<ulong>(new ForwardedRequest(ForwardedOp.Remove, Id: id),
            async d => { await RemoveHereAsync(id, d.Token); return 0UL; }, r => r.Index, true, WriteTimedOut), mayForward, cancellationToken);

    private async Task RemoveHereAsync(string id, CancellationToken cancellationToken)
    {
        await EnterAsync("remove", leaderOnly: true, cancellationToken);
        if (!Servers.Any(s => s.Id == id))
        {
            throw new NodeException(NodeErrorKind.NotFound, $"node {id} is not a member");
        }
        Removes.Enqueue(id);
    }

    public Task TransferLeadershipAsync(string? targetId, CancellationToken cancellationToken = default) => TransferLeadershipAsync(targetId, true, cancellationToken);

    private Task TransferLeadershipAsync(string? targetId, bool mayForward, CancellationToken cancellationToken) =>
        Router.RouteAsync(new RoutedCall<ulong>(new ForwardedRequest(ForwardedOp.Transfer, Id: targetId),
            async d => { await TransferHereAsync(targetId, d.Token); return 0UL; }, r => r.Index, true, WriteTimedOut), mayForward, cancellationToken);

    private async Task TransferHereAsync(string? targetId, CancellationToken cancellationToken)
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

    /// <summary>Serves a forwarded call here, as the real node does: never forwarded again.</summary>
    public async Task<byte[]> AnswerForwardedAsync(ReadOnlyMemory<byte> call, CancellationToken cancellationToken)
    {
        var r = ForwardedRequest.Decode(call);
        try
        {
            ulong index = 0;
            string? value = null;
            switch (r.Op)
            {
                case ForwardedOp.Set: index = await SetHereAsync(r.Pairs!, cancellationToken); break;
                case ForwardedOp.Delete: index = await DeleteHereAsync(r.Key!, cancellationToken); break;
                case ForwardedOp.Get: value = await GetHereAsync(r.Key!, r.Level, cancellationToken); break;
                case ForwardedOp.Join: await JoinHereAsync(new JoinRequest(r.Id!, r.RaftAddress!, r.HttpAddress!, r.Voter), cancellationToken); break;
                case ForwardedOp.Remove: await RemoveHereAsync(r.Id!, cancellationToken); break;
                case ForwardedOp.Transfer: await TransferHereAsync(r.Id, cancellationToken); break;
            }
            return new ForwardedResult(index, value, null).Encode();
        }
        catch (NodeException e)
        {
            return new ForwardedResult(0, null, e).Encode();
        }
    }

    /// <summary>This node with forwarding refused, as <c>?redirect=true</c> asks.</summary>
    private sealed class Redirector(FakeKvNode node) : IKvNode
    {
        public string Id => node.Id;
        public Task<ulong> SetAsync(IReadOnlyList<KeyValuePair<string, string>> pairs, CancellationToken cancellationToken = default) => node.SetAsync(pairs, false, cancellationToken);
        public Task<ulong> DeleteAsync(string key, CancellationToken cancellationToken = default) => node.DeleteAsync(key, false, cancellationToken);
        public Task<string?> GetAsync(string key, ReadLevel level, CancellationToken cancellationToken = default) => node.GetAsync(key, level, false, cancellationToken);
        public Task JoinAsync(JoinRequest request, CancellationToken cancellationToken = default) => node.JoinAsync(request, false, cancellationToken);
        public Task RemoveAsync(string id, CancellationToken cancellationToken = default) => node.RemoveAsync(id, false, cancellationToken);
        public Task TransferLeadershipAsync(string? targetId, CancellationToken cancellationToken = default) => node.TransferLeadershipAsync(targetId, false, cancellationToken);
        public Task<ulong> SnapshotAsync(CancellationToken cancellationToken = default) => node.SnapshotAsync(cancellationToken);
        public Task<NodeStatus> GetStatusAsync(CancellationToken cancellationToken = default) => node.GetStatusAsync(cancellationToken);
        public ValueTask DisposeAsync() => ValueTask.CompletedTask;
    }

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
