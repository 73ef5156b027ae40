using System.Diagnostics;
using RaftKv.Node.StateMachine;
using RaftKv.Raft;

namespace RaftKv.Node.Runtime;

// Client requests, turned into core inputs on the loop thread. Each returns a task the caller awaits with its own
// timeout; a request that times out is simply forgotten when its answer comes.
internal sealed partial class RaftLoop
{
    private readonly List<(string Target, TaskCompletionSource<string> Completion)> _leaderWaiters = [];

    // Writes and linearizable reads, the hot paths, may complete inline (NodeOptions.InlineCompletions, set by
    // raftkvd): the loop thread then runs what awaits them (in raftkvd, the rest of the HTTP request, up to the
    // non-blocking write of its response) instead of waking a pool thread per request. Measured with wrk, 3 nodes on
    // 2 cores, 6 interleaved runs: linearizable reads 29,800/s vs 23,100/s (leader CPU 34 vs 47 µs a read), writes
    // unchanged, and a third fewer thread switches per write. The price is the rule of architecture.md: nothing that
    // awaits a node task may block. Embedding programs cannot be held to it, so it is off unless asked for.
    private TaskCreationOptions HotPath => _options.InlineCompletions ? TaskCreationOptions.None : TaskCreationOptions.RunContinuationsAsynchronously;

    /// <summary>A write waiting for the loop to take it. Its caller waits until <see cref="Deadline"/> or until <see cref="Cancellation"/> fires.</summary>
    private readonly record struct QueuedProposal(byte[] Command, TaskCompletionSource<ulong> Completion, long Deadline, CancellationToken Cancellation);

    /// <summary>A linearizable read waiting for the loop to take it.</summary>
    private readonly record struct QueuedRead(string Key, TaskCompletionSource<string?> Completion, long Deadline, CancellationToken Cancellation);

    /// <summary>Stopwatch timestamp <paramref name="timeout"/> from now: when a caller waiting that long gives up.</summary>
    private static long DeadlineAfter(TimeSpan timeout) => Stopwatch.GetTimestamp() + (long)(timeout.TotalSeconds * Stopwatch.Frequency);

    /// <summary>True when the caller has given up (its deadline passed, or it cancelled): nobody waits for the answer.</summary>
    private static bool Abandoned(long deadline, CancellationToken cancellation) =>
        cancellation.IsCancellationRequested || Stopwatch.GetTimestamp() >= deadline;

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
        var tcs = new TaskCompletionSource<ulong>(HotPath);
        PostProposal(new QueuedProposal(command, tcs, DeadlineAfter(timeout), cancellationToken));
        return tcs.Task;
    }

    private void Propose(QueuedProposal p)
    {
        _queueBound.Leave(p.Command.Length);
        if (Abandoned(p.Deadline, p.Cancellation))
        {
            // Its caller has already answered its client (timed out, or gone): proposing it now would apply a write
            // nobody waits for, after the client was told it timed out.
            p.Completion.TrySetException(new NodeException(NodeErrorKind.NotApplied, "the request timed out (or was cancelled) before the write was proposed; it was not applied"));
            return;
        }
        var r = _core.Propose(p.Command);
        if (!r.Accepted) p.Completion.TrySetException(Refused(r));
        else _proposals.Add(r.Index, r.Term, new PendingWrite(p.Completion, r.Index));
    }

    /// <summary>Proposes a membership change; the task ends once it is committed and applied here.</summary>
    public Task<ulong> ChangeConfigurationAsync(ConfigChange change, bool mustExist)
    {
        var tcs = new TaskCompletionSource<ulong>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            if (_core.Role == Role.Leader && mustExist && _core.Config.Find(change.NodeId) is null)
            {
                tcs.TrySetException(new NodeException(NodeErrorKind.NotFound, $"node '{change.NodeId}' is not a member of the cluster"));
                return;
            }
            if (_core.Role == Role.Leader && change.Type is ConfigChangeType.AddVoter or ConfigChangeType.AddNonVoter)
            {
                if (CheckAddition(change, out var problem) is { } checkedChange) change = checkedChange;
                else
                {
                    tcs.TrySetException(new NodeException(NodeErrorKind.BadRequest, problem!));
                    return;
                }
            }
            var r = _core.ProposeConfigChange(change);
            if (!r.Accepted) tcs.TrySetException(Refused(r));
            else _proposals.Add(r.Index, r.Term, new PendingWrite(tcs, r.Index));
        });
        return tcs.Task;
    }

    /// <summary>
    /// Checks an addition against the members: a raft address already used by another id is refused (two ids at one
    /// address make a phantom voter that can never answer, and the quorum grows for nothing; loopback spellings count as
    /// one host). A join that names no HTTP address keeps the one the member has, as hraftd's join body carries none and
    /// forwarding to that node must not break, unless its raft address moved to another host.
    /// Returns the change to propose, or null with the reason.
    /// </summary>
    private ConfigChange? CheckAddition(ConfigChange change, out string? problem)
    {
        problem = null;
        foreach (var member in _core.Config.Members)
        {
            if (member.Id != change.NodeId && NetworkAddress.SameEndpoint(member.Address, change.Address))
            {
                problem = $"raft address {change.Address} is already used by node '{member.Id}'; remove that node first to reuse it";
                return null;
            }
            if (member.Id == change.NodeId && string.IsNullOrEmpty(change.HttpAddress) && member.HttpAddress.Length > 0 && SameHost(member.Address, change.Address))
            {
                change = change with { HttpAddress = member.HttpAddress };
            }
        }
        return change;
    }

    /// <summary>True when both raft addresses are on one host: a node that moved hosts has moved its HTTP side too.</summary>
    private static bool SameHost(string a, string b) =>
        NetworkAddress.TryParse(a, out var ha, out _) && NetworkAddress.TryParse(b, out var hb, out _)
        && string.Equals(ha, hb, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// A linearizable read through ReadIndex; a follower asks its leader for the index and serves from its own state.
    /// As with <see cref="ProposeAsync"/>, the caller waits at most <paramref name="timeout"/>, the read is dropped
    /// (and its read id released) once it has given up, and it is refused as busy when too many requests wait.
    /// </summary>
    public Task<string?> ReadLinearizableAsync(string key, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (_stopping) return Task.FromException<string?>(new NodeException(NodeErrorKind.Unavailable, "the node is shutting down"));
        if (!_queueBound.TryEnter(0)) return Task.FromException<string?>(_queueBound.Full());
        var tcs = new TaskCompletionSource<string?>(HotPath);
        _readInputs.Enqueue(new QueuedRead(key, tcs, DeadlineAfter(timeout), cancellationToken));
        // See HoldReadsWhileARoundIsAnswered: while a leader's round is being answered, the answers wake the loop.
        Interlocked.MemoryBarrier();
        if (!_readsHeld) Wake();
        // The loop may have stopped between the check above and the enqueue (see PostProposal).
        if (_stopping) tcs.TrySetException(new NodeException(NodeErrorKind.Unavailable, "the node is shutting down"));
        return tcs.Task;
    }

    private void StartRead(QueuedRead read)
    {
        _queueBound.Leave(0);
        if (Abandoned(read.Deadline, read.Cancellation))
        {
            read.Completion.TrySetException(new NodeException(NodeErrorKind.Timeout, "the read timed out before it started"));
            return;
        }
        var id = _nextReadId++;
        _reads[id] = new PendingRead(read.Key, read.Completion, read.Deadline, read.Cancellation);
        _core.ReadIndex(id);
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
        _readsHeld = _core.ReadRoundInFlight;
        Interlocked.MemoryBarrier();
    }

    /// <summary>The leader's state without a quorum check; refused elsewhere.</summary>
    public Task<string?> ReadWeakAsync(string key) => Call(() =>
    {
        if (_core.Role != Role.Leader) throw NotLeader();
        return _state.Get(key);
    });

    /// <summary>Asks for leadership to move to <paramref name="target"/> (or the most caught-up voter); ends when it leads.</summary>
    public Task<string> TransferLeadershipAsync(string? target)
    {
        var tcs = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() =>
        {
            if (_core.Role != Role.Leader)
            {
                tcs.TrySetException(NotLeader());
                return;
            }
            target ??= _core.ReplicationStatus
                .Where(p => p.Key != _options.Id && _core.Config.IsVoter(p.Key))
                .OrderByDescending(p => p.Value.Match)
                .Select(p => p.Key)
                .FirstOrDefault();
            if (target is null)
            {
                tcs.TrySetException(new NodeException(NodeErrorKind.BadRequest, "there is no other voter to transfer leadership to"));
                return;
            }
            if (target == _options.Id)
            {
                tcs.TrySetResult(target);
                return;
            }
            var r = _core.TransferLeadership(target);
            if (!r.Accepted)
            {
                tcs.TrySetException(Refused(r));
                return;
            }
            _leaderWaiters.Add((target, tcs));
        });
        return tcs.Task;
    }

    /// <summary>Takes a snapshot now (if anything was applied since the last one); ends with the snapshot's index.</summary>
    public Task<ulong> SnapshotNowAsync()
    {
        var tcs = new TaskCompletionSource<ulong>(TaskCreationOptions.RunContinuationsAsynchronously);
        Post(() => MaybeStartSnapshot(byInterval: false, manual: tcs));
        return tcs.Task;
    }

    public Task<NodeStatus> StatusAsync() => Call(BuildStatus);

    /// <summary>What a join needs to know of a member, read on the loop: is it one, how far has it caught up, who is it.</summary>
    /// <param name="id">The member.</param>
    /// <param name="refusedSinceTick">Only a refusal as another cluster at or after this <see cref="Environment.TickCount64"/> counts.</param>
    public Task<MemberProgress> MemberProgressAsync(string id, long refusedSinceTick = long.MinValue) => Call(() => new MemberProgress(
        _core.Config.ClusterId,
        _core.Role == Role.Leader,
        _core.Config.Find(id),
        _core.CommitIndex,
        _core.ReplicationStatus.TryGetValue(id, out var p) ? p.Match : 0,
        _core.ObservedIncarnation(id),
        _transport.RefusedAsOtherCluster(id, refusedSinceTick),
        _core.Config.Members.FirstOrDefault(m => NetworkAddress.IsLocalOnly(m.Address))));

    /// <summary>Reads this follower's core still expects its leader to answer (for tests: they must not pile up).</summary>
    public Task<int> ForwardedReadCountAsync() => Call(() => _core.ForwardedReadCount);

    /// <summary>Requests waiting for the loop to take them (for tests).</summary>
    public int QueuedRequests => _queueBound.Requests;

    private void ServeReads()
    {
        for (var i = _readsWaitingForApply.Count - 1; i >= 0; i--)
        {
            var (read, index) = _readsWaitingForApply[i];
            if (_state.AppliedIndex < index) continue;
            _readsWaitingForApply.RemoveAt(i);
            read.Completion.TrySetResult(_state.Get(read.Key));
        }
    }

    /// <summary>
    /// Forgets reads whose caller has given up (a forwarded read whose message was lost is never answered), and tells
    /// the core to forget their ids too: a follower would otherwise keep each one until the term changes.
    /// </summary>
    private void ExpireReads()
    {
        for (var i = _readsWaitingForApply.Count - 1; i >= 0; i--)
        {
            var read = _readsWaitingForApply[i].Read;
            if (!Abandoned(read.Deadline, read.Cancellation)) continue;
            _readsWaitingForApply.RemoveAt(i);
            read.Completion.TrySetException(new NodeException(NodeErrorKind.Timeout, "the read timed out waiting for this node to apply the log"));
        }
        if (_reads.Count == 0) return;
        List<ulong>? expired = null;
        foreach (var (id, r) in _reads)
        {
            if (Abandoned(r.Deadline, r.Cancellation)) (expired ??= []).Add(id);
        }
        if (expired is null) return;
        foreach (var id in expired)
        {
            _reads.Remove(id, out var r);
            _core.AbandonRead(id);
            r!.Completion.TrySetException(new NodeException(NodeErrorKind.Timeout, "the read timed out waiting for the leader"));
        }
    }

    private NodeException NotLeader()
    {
        var leader = _core.Leader;
        // A removed node will never know a leader again: say why, rather than suggest a retry that cannot help.
        if (MembershipOf(_core.Config) == Membership.Removed)
            return new NodeException(NodeErrorKind.Unavailable, "this node was removed from the cluster; ask another node, or add this one again with /join");
        if (leader is null) return new NodeException(NodeErrorKind.NoLeader, "no leader is known; an election may be under way");
        var address = _core.Config.Find(leader) is { } m ? NodeAddress.Of(m) : default;
        return new NodeException(NodeErrorKind.NotLeader, $"not the leader; the leader is {leader}", leader, address.Http is { Length: > 0 } h ? h : null);
    }

    private NodeException Refused(ProposeResult r) => r.Refusal switch
    {
        Refusal.NotLeader => NotLeader(),
        Refusal.TransferInProgress or Refusal.QueueFull or Refusal.ConfigChangeInProgress => new NodeException(NodeErrorKind.Busy, r.Message ?? "busy; retry"),
        _ => new NodeException(NodeErrorKind.BadRequest, r.Message ?? "refused"),
    };

    private static NodeException ReadFailure(FailedRead f) =>
        f.Reason == ReadFailureReason.NoLeader
            ? new NodeException(NodeErrorKind.NoLeader, "no leader is known; the read could not be confirmed")
            : new NodeException(NodeErrorKind.NoLeader, "the read could not be confirmed: " + f.Message);

    /// <summary>This node's standing in the configuration in force.</summary>
    private Membership MembershipOf(ClusterConfig config)
    {
        if (config.Members.Length == 0) return Membership.NotJoined;
        if (config.Find(_options.Id) is not { } self)
            // Until the entry that removed it commits, it may still be put back (the entry truncated).
            return _core.ConfigIndex <= _core.CommitIndex ? Membership.Removed : Membership.NotJoined;
        if (self.Incarnation != 0 && self.Incarnation != _incarnation) return Membership.PreviousIncarnation;
        return self.IsVoter ? Membership.Voter : Membership.NonVoter;
    }

    private NodeStatus BuildStatus()
    {
        var leader = _core.Leader;
        var leaderMember = leader is null ? null : _core.Config.Find(leader);
        var leaderAddress = leaderMember is null ? default : NodeAddress.Of(leaderMember);
        var replication = _core.ReplicationStatus;
        var servers = _core.Config.Members.Select(m =>
        {
            var a = NodeAddress.Of(m);
            var state = m.Id == leader ? "Leader" : !m.IsVoter ? "NonVoter" : leader is null ? "Unknown" : "Follower";
            if (m.Id == _options.Id && _core.Role is Role.Candidate or Role.PreCandidate) state = "Candidate";
            ulong? match = replication.TryGetValue(m.Id, out var p) ? p.Match : null;
            return new ServerStatus(m.Id, a.Raft, a.Http, m.IsVoter, state, match) { Incarnation = m.Incarnation };
        }).ToList();
        TimeSpan? contact = _core.Role == Role.Leader ? TimeSpan.Zero
            : _lastLeaderContact < 0 ? null : Stopwatch.GetElapsedTime(_lastLeaderContact);
        var snapshot = _storage.Snapshot;
        return new NodeStatus
        {
            Id = _options.Id,
            RaftAddress = _options.RaftAddress,
            HttpAddress = _options.HttpAdvertiseAddress,
            Role = _core.Role,
            Term = _core.Term,
            LeaderId = leader,
            LeaderRaftAddress = leaderAddress.Raft,
            LeaderHttpAddress = leaderAddress.Http,
            CommitIndex = _core.CommitIndex,
            AppliedIndex = _state.AppliedIndex,
            LastLogIndex = _core.LastIndex,
            LastLogTerm = _core.LastTerm,
            LastSnapshotIndex = snapshot.Index,
            LastSnapshotTerm = snapshot.Term,
            ConfigurationIndex = _core.ConfigIndex,
            FsmPending = _core.CommitIndex > _state.AppliedIndex ? _core.CommitIndex - _state.AppliedIndex : 0,
            LastContact = contact,
            Servers = servers,
            Keys = _state.Count,
            ClusterId = _core.Config.ClusterId,
            Incarnation = _incarnation,
            Membership = MembershipOf(_core.Config),
            CatchUpTarget = _core.Role == Role.Leader ? _core.CommitIndex : _catchUpTarget,
        };
    }
}
