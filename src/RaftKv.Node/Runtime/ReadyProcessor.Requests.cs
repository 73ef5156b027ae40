using RaftKv.Raft;

namespace RaftKv.Node.Runtime;

/// <summary>A write waiting for the loop to take it. Its caller waits until <see cref="Deadline"/> (a TimeProvider timestamp) or until <see cref="Cancellation"/> fires.</summary>
internal readonly record struct QueuedProposal(byte[] Command, TaskCompletionSource<ulong> Completion, long Deadline, CancellationToken Cancellation);

/// <summary>A linearizable read waiting for the loop to take it.</summary>
internal readonly record struct QueuedRead(string Key, TaskCompletionSource<string?> Completion, long Deadline, CancellationToken Cancellation);

// Client requests turned into core inputs, and their completion once the core says how they ended. A request whose
// caller gave up (its deadline passed, or it cancelled) is dropped rather than carried out for nobody.
internal sealed partial class ReadyProcessor
{
    private sealed record PendingRead(string Key, TaskCompletionSource<string?> Completion, long Deadline, CancellationToken Cancellation);

    private sealed record PendingWrite(TaskCompletionSource<ulong> Completion, ulong Index);

    private readonly ProposalTracker<PendingWrite> _proposals = new();
    private readonly Dictionary<ulong, PendingRead> _reads = [];
    private readonly List<(PendingRead Read, ulong Index)> _readsWaitingForApply = [];
    private readonly List<(string Target, TaskCompletionSource<string> Completion)> _leaderWaiters = [];
    private ulong _nextReadId = 1;

    /// <summary>Writes proposed and not yet resolved.</summary>
    public int PendingWrites => _proposals.Count;

    /// <summary>The TimeProvider timestamp <paramref name="timeout"/> from now: when a caller waiting that long gives up. Any thread.</summary>
    public long DeadlineAfter(TimeSpan timeout) => After(_time.GetTimestamp(), timeout);

    /// <summary>True when the caller has given up (its deadline passed, or it cancelled): nobody waits for the answer.</summary>
    private bool Abandoned(long deadline, CancellationToken cancellation) =>
        cancellation.IsCancellationRequested || _time.GetTimestamp() >= deadline;

    /// <summary>Proposes a queued write; its completion ends with the index it was applied at, or with why it was not.</summary>
    public void Propose(in QueuedProposal p)
    {
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

    /// <summary>Proposes a membership change; <paramref name="completion"/> ends once it is committed and applied here.</summary>
    public void ChangeConfiguration(ConfigChange change, bool mustExist, TaskCompletionSource<ulong> completion)
    {
        if (_core.Role == Role.Leader && mustExist && _core.Config.Find(change.NodeId) is null)
        {
            completion.TrySetException(new NodeException(NodeErrorKind.NotFound, $"node '{change.NodeId}' is not a member of the cluster"));
            return;
        }
        if (_core.Role == Role.Leader && change.Type is ConfigChangeType.AddVoter or ConfigChangeType.AddNonVoter)
        {
            if (CheckAddition(change, out var problem) is { } checkedChange) change = checkedChange;
            else
            {
                completion.TrySetException(new NodeException(NodeErrorKind.BadRequest, problem!));
                return;
            }
        }
        var r = _core.ProposeConfigChange(change);
        if (!r.Accepted) completion.TrySetException(Refused(r));
        else _proposals.Add(r.Index, r.Term, new PendingWrite(completion, r.Index));
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

    /// <summary>Starts a linearizable read through ReadIndex; a follower asks its leader for the index and serves from its own state.</summary>
    public void StartRead(in QueuedRead read)
    {
        if (Abandoned(read.Deadline, read.Cancellation))
        {
            read.Completion.TrySetException(new NodeException(NodeErrorKind.Timeout, "the read timed out before it started"));
            return;
        }
        if (RemovedError() is { } removed)
        {
            read.Completion.TrySetException(removed);
            return;
        }
        var id = _nextReadId++;
        _reads[id] = new PendingRead(read.Key, read.Completion, read.Deadline, read.Cancellation);
        _core.ReadIndex(id);
    }

    /// <summary>The leader's state without a quorum check; refused elsewhere.</summary>
    public string? ReadWeak(string key)
    {
        if (_core.Role != Role.Leader) throw NotLeader();
        return _state.Get(key);
    }

    /// <summary>Asks for leadership to move to <paramref name="target"/> (or the most caught-up voter); <paramref name="completion"/> ends when it leads.</summary>
    public void TransferLeadership(string? target, TaskCompletionSource<string> completion)
    {
        if (_core.Role != Role.Leader)
        {
            completion.TrySetException(NotLeader());
            return;
        }
        target ??= _core.ReplicationStatus
            .Where(p => p.Key != _options.Id && _core.Config.IsVoter(p.Key))
            .OrderByDescending(p => p.Value.Match)
            .Select(p => p.Key)
            .FirstOrDefault();
        if (target is null)
        {
            completion.TrySetException(new NodeException(NodeErrorKind.BadRequest, "there is no other voter to transfer leadership to"));
            return;
        }
        if (target == _options.Id)
        {
            completion.TrySetResult(target);
            return;
        }
        var r = _core.TransferLeadership(target);
        if (!r.Accepted)
        {
            completion.TrySetException(Refused(r));
            return;
        }
        _leaderWaiters.Add((target, completion));
    }

    private static void ResolveProposal(PendingWrite write, ProposalOutcome outcome)
    {
        var tcs = write.Completion;
        switch (outcome)
        {
            case ProposalOutcome.Applied:
                tcs.TrySetResult(write.Index);
                break;
            case ProposalOutcome.Superseded:
                tcs.TrySetException(new NodeException(NodeErrorKind.NotApplied, "leadership changed before the write committed; it was not applied"));
                break;
            default:
                tcs.TrySetException(new NodeException(NodeErrorKind.Timeout, "the node lost track of the write (its log was replaced by a snapshot); it may or may not have been applied"));
                break;
        }
    }

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

    public NodeException NotLeader()
    {
        var leader = _core.Leader;
        if (RemovedError() is { } removed) return removed;
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

    /// <summary>
    /// Set when this node has been removed: it will never know a leader again, so it says why rather than suggest a
    /// retry that cannot help.
    /// </summary>
    private NodeException? RemovedError() => MembershipOf(_core.Config) == Membership.Removed
        ? new NodeException(NodeErrorKind.Unavailable, "this node was removed from the cluster; ask another node, or add this one again with /join")
        : null;

    private NodeException ReadFailure(FailedRead f) => RemovedError() ?? (f.Reason == ReadFailureReason.NoLeader
            ? new NodeException(NodeErrorKind.NoLeader, "no leader is known; the read could not be confirmed")
            : new NodeException(NodeErrorKind.NoLeader, "the read could not be confirmed: " + f.Message));

    /// <summary>This node's standing in the configuration in force.</summary>
    public Membership MembershipOf(ClusterConfig config)
    {
        if (config.Members.Length == 0) return Membership.NotJoined;
        if (config.Find(_options.Id) is not { } self)
            // Until the entry that removed it commits, it may still be put back (the entry truncated).
            return _core.ConfigIndex <= _core.CommitIndex ? Membership.Removed : Membership.NotJoined;
        if (self.Incarnation != 0 && self.Incarnation != _options.Incarnation) return Membership.PreviousIncarnation;
        return self.IsVoter ? Membership.Voter : Membership.NonVoter;
    }

    /// <summary>How long since the leader was last heard from (null: never since this node started).</summary>
    public TimeSpan? SinceLeaderContact => _lastLeaderContact < 0 ? null : _time.GetElapsedTime(_lastLeaderContact);

    /// <summary>The leader's commit index as of the first Append or heartbeat heard since this node started (readiness).</summary>
    public ulong? CatchUpTarget => _catchUpTarget;
}
