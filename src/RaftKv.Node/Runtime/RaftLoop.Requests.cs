using RaftKv.Raft;

namespace RaftKv.Node.Runtime;

// Client requests, queued for the loop thread, which hands them to the Ready processor. Each returns a task the caller
// awaits with its own timeout; a request that times out is simply forgotten when its answer comes.
internal sealed partial class RaftLoop
{
    // Writes and linearizable reads, the hot paths, may complete inline (NodeOptions.InlineCompletions, set by
    // raftkvd): the loop thread then runs what awaits them (in raftkvd, the rest of the HTTP request, up to the
    // non-blocking write of its response) instead of waking a pool thread per request (docs/measurements.md has the
    // figures). The price is the rule of architecture.md: nothing that awaits a node task may block. Embedding
    // programs cannot be held to it, so it is off unless asked for.
    private TaskCreationOptions RequestCompletionOptions => _options.InlineCompletions ? TaskCreationOptions.None : TaskCreationOptions.RunContinuationsAsynchronously;

    /// <summary>
    /// Proposes a command; the task ends with the index it was applied at (completed on the loop thread). The caller
    /// waits at most <paramref name="timeout"/>: a proposal the loop has not taken by then (or once
    /// <paramref name="cancellationToken"/> fires) is never proposed, so a client told "timed out" does not see its
    /// write applied minutes later. Refused at once as busy when too many requests wait already.
    /// </summary>
    public Task<ulong> ProposeAsync(byte[] command, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (_stopping) return Task.FromException<ulong>(new NodeException(NodeErrorKind.Unavailable, "the node is shutting down"));
        if (!_queueBound.TryEnter(command.Length)) return Task.FromException<ulong>(_queueBound.Full());
        var tcs = new TaskCompletionSource<ulong>(RequestCompletionOptions);
        PostProposal(new QueuedProposal(command, tcs, _processor.DeadlineAfter(timeout), cancellationToken));
        return tcs.Task;
    }

    /// <summary>Proposes a membership change; the task ends once it is committed and applied here.</summary>
    public Task<ulong> ChangeConfigurationAsync(ConfigChange change, bool mustExist)
    {
        var tcs = new TaskCompletionSource<ulong>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() => _processor.ChangeConfiguration(change, mustExist, tcs));
        return tcs.Task;
    }

    /// <summary>
    /// A linearizable read through ReadIndex; a follower asks its leader for the index and serves from its own state.
    /// As with <see cref="ProposeAsync"/>, the caller waits at most <paramref name="timeout"/>, the read is dropped
    /// (and its read id released) once it has given up, and it is refused as busy when too many requests wait.
    /// </summary>
    public Task<string?> ReadLinearizableAsync(string key, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (_stopping) return Task.FromException<string?>(new NodeException(NodeErrorKind.Unavailable, "the node is shutting down"));
        if (!_queueBound.TryEnter(0)) return Task.FromException<string?>(_queueBound.Full());
        var tcs = new TaskCompletionSource<string?>(RequestCompletionOptions);
        _readInputs.Enqueue(new QueuedRead(key, tcs, _processor.DeadlineAfter(timeout), cancellationToken));
        // See HoldReadsWhileARoundIsAnswered: while a leader's round is being answered, the answers wake the loop.
        Interlocked.MemoryBarrier();
        if (!_readsHeld) Wake();
        // The loop may have stopped between the check above and the enqueue (see PostProposal).
        if (_stopping) tcs.TrySetException(new NodeException(NodeErrorKind.Unavailable, "the node is shutting down"));
        return tcs.Task;
    }

    /// <summary>
    /// Called at the end of every turn. While the leader waits for a quorum to answer its heartbeat round, a new read
    /// can only wait for the next round, so it does not wake the loop: the answers do, and the reads that came
    /// meanwhile are taken then, together. (As with held proposals, the barrier pairs with the one in
    /// ReadLinearizableAsync: either the reader sees the hold lifted and wakes the loop, or the loop sees the read
    /// before it waits.)
    /// </summary>
    private void HoldReadsWhileARoundIsAnswered()
    {
        _readsHeld = _processor.Core.ReadRoundInFlight;
        Interlocked.MemoryBarrier();
    }

    /// <summary>The leader's state without a quorum check; refused elsewhere.</summary>
    public Task<string?> ReadWeakAsync(string key) => Call(() => _processor.ReadWeak(key));

    /// <summary>Asks for leadership to move to <paramref name="target"/> (or the most caught-up voter); ends when it leads.</summary>
    public Task<string> TransferLeadershipAsync(string? target)
    {
        var tcs = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() => _processor.TransferLeadership(target, tcs));
        return tcs.Task;
    }

    /// <summary>Takes a snapshot now (if anything was applied since the last one); ends with the snapshot's index.</summary>
    public Task<ulong> SnapshotNowAsync()
    {
        var tcs = new TaskCompletionSource<ulong>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() => _processor.TakeSnapshotNow(tcs));
        return tcs.Task;
    }

    public Task<NodeStatus> StatusAsync() => Call(BuildStatus);

    // The core, for status and join probes (on the loop thread).
    private RaftCore Core => _processor.Core;

    /// <summary>What a join needs to know of a member, read on the loop: is it one, how far has it caught up, who is it.</summary>
    /// <param name="id">The member.</param>
    /// <param name="refusedSinceTick">Only a refusal as another cluster at or after this <see cref="Environment.TickCount64"/> counts.</param>
    public Task<MemberProgress> MemberProgressAsync(string id, long refusedSinceTick = long.MinValue) => Call(() => new MemberProgress(
        Core.Config.ClusterId,
        Core.Role == Role.Leader,
        Core.Config.Find(id),
        Core.CommitIndex,
        Core.ReplicationStatus.TryGetValue(id, out var p) ? p.Match : 0,
        Core.ObservedIncarnation(id),
        _transport.RefusedAsOtherCluster(id, refusedSinceTick),
        Core.Config.Members.FirstOrDefault(m => NetworkAddress.IsLocalOnly(m.Address))));

    /// <summary>Reads this follower's core still expects its leader to answer (for tests: they must not pile up).</summary>
    public Task<int> ForwardedReadCountAsync() => Call(() => Core.ForwardedReadCount);

    /// <summary>Requests waiting for the loop to take them (for tests).</summary>
    public int QueuedRequests => _queueBound.Requests;

    private NodeStatus BuildStatus()
    {
        var leader = Core.Leader;
        var leaderMember = leader is null ? null : Core.Config.Find(leader);
        var leaderAddress = leaderMember is null ? default : NodeAddress.Of(leaderMember);
        var replication = Core.ReplicationStatus;
        var servers = Core.Config.Members.Select(m =>
        {
            var a = NodeAddress.Of(m);
            var state = m.Id == leader ? "Leader" : !m.IsVoter ? "NonVoter" : leader is null ? "Unknown" : "Follower";
            if (m.Id == _options.Id && Core.Role is Role.Candidate or Role.PreCandidate) state = "Candidate";
            ulong? match = replication.TryGetValue(m.Id, out var p) ? p.Match : null;
            return new ServerStatus(m.Id, a.Raft, a.Http, m.IsVoter, state, match) { Incarnation = m.Incarnation };
        }).ToList();
        TimeSpan? contact = Core.Role == Role.Leader ? TimeSpan.Zero
            : _processor.SinceLeaderContact;
        var snapshot = _storage.Snapshot;
        return new NodeStatus
        {
            Id = _options.Id,
            RaftAddress = _options.RaftAddress,
            HttpAddress = _options.HttpAdvertiseAddress,
            Role = Core.Role,
            Term = Core.Term,
            LeaderId = leader,
            LeaderRaftAddress = leaderAddress.Raft,
            LeaderHttpAddress = leaderAddress.Http,
            CommitIndex = Core.CommitIndex,
            AppliedIndex = _processor.State.AppliedIndex,
            LastLogIndex = Core.LastIndex,
            LastLogTerm = Core.LastTerm,
            LastSnapshotIndex = snapshot.Index,
            LastSnapshotTerm = snapshot.Term,
            ConfigurationIndex = Core.ConfigIndex,
            FsmPending = Core.CommitIndex > _processor.State.AppliedIndex ? Core.CommitIndex - _processor.State.AppliedIndex : 0,
            LastContact = contact,
            Servers = servers,
            Keys = _processor.State.Count,
            ClusterId = Core.Config.ClusterId,
            Incarnation = _incarnation,
            Membership = _processor.MembershipOf(Core.Config),
            CatchUpTarget = Core.Role == Role.Leader ? Core.CommitIndex : _processor.CatchUpTarget,
        };
    }
}
