namespace RaftKv.Raft;

// Linearizable reads without log writes: ReadIndex (thesis §6.4).
public sealed partial class RaftCore
{
    /// <summary>
    /// Asks for a read index for request <paramref name="requestId"/>. The answer comes in a later Ready: a
    /// <see cref="ReadState"/> (serve the read once that index is applied) or a <see cref="FailedRead"/>. A follower
    /// asks its leader; a leader confirms it still leads with one heartbeat round shared by all reads that arrived
    /// while the previous round was being answered, and serves none before its term's first entry is committed.
    /// </summary>
    public void ReadIndex(ulong requestId)
    {
        EnsureNoReadyOutstanding();
        if (Role == Role.Leader)
        {
            LeaderRead(requestId, Id);
        }
        else if (Leader is not null)
        {
            _forwardedReads.Add(requestId);
            Send(new Message { Type = MessageType.ReadIndex, From = Id, To = Leader, Term = Term, Context = requestId });
        }
        else
        {
            _ready.FailedReadList.Add(new FailedRead(requestId, ReadFailureReason.NoLeader, null));
        }
    }

    /// <summary>
    /// True while this leader waits for a quorum to answer its last heartbeat round: a read asked for now waits for
    /// that and then for the next round, so a runtime need not hurry to hand it over (raftkvd does not wake its loop
    /// for it).
    /// </summary>
    public bool ReadRoundInFlight => Role == Role.Leader && _reads.RoundInFlight;

    /// <summary>Number of reads the leader holds waiting for confirmation.</summary>
    public int PendingReadCount => _reads.Count;

    /// <summary>Number of reads this follower forwarded to its leader and has not heard back about.</summary>
    public int ForwardedReadCount => _forwardedReads.Count;

    /// <summary>
    /// The runtime gave up on read <paramref name="requestId"/> (its caller timed out): a follower forgets it, so that
    /// reads whose answers were lost do not pile up until the term changes, and a late answer is ignored. (A leader's
    /// own pending reads end with the next confirmed round or the term.)
    /// </summary>
    public void AbandonRead(ulong requestId)
    {
        EnsureNoReadyOutstanding();
        _forwardedReads.Remove(requestId);
    }

    private void LeaderRead(ulong requestId, string origin)
    {
        if (_log.Committed < _ownTermStart)
        {
            // §6.4 step 1: until its no-op commits, a new leader does not know the commit index.
            _reads.Defer(requestId, origin);
            return;
        }
        if (IsSingleVoterLeader)
        {
            RespondRead(requestId, origin, _log.Committed);
            return;
        }
        _reads.Add(requestId, origin, _log.Committed);
    }

    private void ServeDeferredReads()
    {
        foreach (var (id, origin) in _reads.TakeDeferred()) LeaderRead(id, origin);
    }

    private void ReleaseReads()
    {
        _released.Clear();
        _reads.Release(Id, _tracker.Quorum, _released);
        foreach (var r in _released) RespondRead(r.RequestId, r.Origin, r.Index);
    }

    private void RespondRead(ulong requestId, string origin, ulong index)
    {
        if (origin == Id) _ready.ReadStateList.Add(new ReadState(requestId, index));
        else Send(new Message { Type = MessageType.ReadIndexResponse, From = Id, To = origin, Term = Term, Context = requestId, Index = index });
    }

    private void RejectRead(Message m) =>
        Send(new Message { Type = MessageType.ReadIndexResponse, From = Id, To = m.From, Term = Term, Context = m.Context, Reject = true });

    private void HandleReadIndexResponse(Message m)
    {
        // Only answers to reads still waiting here count (a duplicate, or an answer after we gave up, is ignored).
        if (!_forwardedReads.Remove(m.Context)) return;
        if (m.Reject) _ready.FailedReadList.Add(new FailedRead(m.Context, ReadFailureReason.NotConfirmedByLeader, Leader));
        else _ready.ReadStateList.Add(new ReadState(m.Context, m.Index));
    }

    private void FailPendingReads(ReadFailureReason reason)
    {
        // Reads forwarded to a leader we no longer follow: its answer would be dropped as stale, so fail them now.
        foreach (var id in _forwardedReads) _ready.FailedReadList.Add(new FailedRead(id, reason, null));
        _forwardedReads.Clear();
        if (_reads.Count == 0) return;
        foreach (var (id, origin) in _reads.Clear())
        {
            if (origin == Id) _ready.FailedReadList.Add(new FailedRead(id, reason, null));
            else Send(new Message { Type = MessageType.ReadIndexResponse, From = Id, To = origin, Term = Term, Context = id, Reject = true });
        }
    }
}
