namespace RaftKv.Raft;

// Log replication (Raft §5.3), commitment (§5.4.2), snapshots (§7) and flow control (etcd-style progress tracking).
public sealed partial class RaftCore
{
    private void ResetProgress()
    {
        _tracker.ClearProgress();
        foreach (var m in Config.Members) AddProgress(m.Id);
        AddProgress(Id);
        var self = _tracker.Find(Id)!;
        self.Match = OwnDurableIndex;
        self.RecentActive = true;
    }

    private void AddProgress(string id) => _tracker.Add(id, _log.LastIndex + 1);

    private void StepLeader(Message m)
    {
        switch (m.Type)
        {
            case MessageType.AppendResponse:
                HandleAppendResponse(m);
                break;
            case MessageType.HeartbeatResponse:
                HandleHeartbeatResponse(m);
                break;
            case MessageType.ReadIndex:
                LeaderRead(m.Context, m.From);
                break;
        }
    }

    private void StepFollower(Message m)
    {
        switch (m.Type)
        {
            case MessageType.Append:
                _electionElapsed = 0;
                Leader = m.From;
                HandleAppend(m);
                break;
            case MessageType.Heartbeat:
                _electionElapsed = 0;
                Leader = m.From;
                _log.CommitTo(Math.Min(m.Commit, _log.LastIndex));
                Send(new Message { Type = MessageType.HeartbeatResponse, From = Id, To = m.From, Term = Term, Context = m.Context });
                break;
            case MessageType.InstallSnapshot:
                _electionElapsed = 0;
                Leader = m.From;
                HandleSnapshot(m);
                break;
            case MessageType.TimeoutNow:
                // Leadership transfer: campaign now, skipping pre-vote, and tell voters to ignore their lease.
                StartElection(transfer: true, "leadership transfer");
                break;
            case MessageType.ReadIndex:
                RejectRead(m);
                break;
            case MessageType.ReadIndexResponse:
                HandleReadIndexResponse(m);
                break;
        }
    }

    /// <summary>AppendEntries receiver (Figure 2, steps 1-5), answering with a conflict hint on rejection.</summary>
    private void HandleAppend(Message m)
    {
        if (m.Index < _log.Committed)
        {
            // Everything up to our commit index matches the leader's log already.
            Send(new Message { Type = MessageType.AppendResponse, From = Id, To = m.From, Term = Term, Index = _log.Committed });
            return;
        }
        var entries = m.Entries.Span;
        if (_log.MatchTerm(m.Index, m.LogTerm))
        {
            var conflict = _log.FindConflict(entries);
            if (conflict >= 0) AppendToLog(entries[conflict..]);
            var lastNew = m.Index + (ulong)entries.Length;
            _log.CommitTo(Math.Min(m.Commit, lastNew));
            Send(new Message { Type = MessageType.AppendResponse, From = Id, To = m.From, Term = Term, Index = lastNew });
            return;
        }
        // Fast backtracking: point the leader at the last index that can possibly match, with its term, so it skips
        // a whole term of conflicting entries per round trip instead of one entry.
        Trace(RaftTraceKind.AppendRejected, m.From, m.Index, "no entry of that term at the previous index");
        var hint = _log.FindConflictByTerm(Math.Min(m.Index, _log.LastIndex), m.LogTerm);
        Send(new Message
        {
            Type = MessageType.AppendResponse, From = Id, To = m.From, Term = Term,
            Index = m.Index, Reject = true, RejectHint = hint, LogTerm = _log.TryTerm(hint) ?? 0,
        });
    }

    /// <summary>InstallSnapshot receiver (§7): replace the log unless it already holds the snapshot's last entry.</summary>
    private void HandleSnapshot(Message m)
    {
        var s = m.Snapshot ?? throw new ArgumentException("InstallSnapshot without metadata");
        if (s.Index <= _log.Committed)
        {
            Send(new Message { Type = MessageType.AppendResponse, From = Id, To = m.From, Term = Term, Index = _log.Committed });
            return;
        }
        if (_log.MatchTerm(s.Index, s.Term))
        {
            // Our log already has the snapshot's last entry: only the commit index moves.
            _log.CommitTo(s.Index);
        }
        else
        {
            _log.Restore(s);
            RestoreConfiguration(s);
        }
        // Acknowledge the snapshot's index only: entries after it in our log were never checked against the leader's.
        Send(new Message { Type = MessageType.AppendResponse, From = Id, To = m.From, Term = Term, Index = s.Index });
    }

    private void HandleAppendResponse(Message m)
    {
        if (!_tracker.TryGet(m.From, out var pr)) return;
        pr.RecentActive = true;
        // Nobody can hold more of this leader's log than it has; such an answer is not about this log.
        if (m.Index > _log.LastIndex) return;
        if (m.Reject)
        {
            var hint = m.RejectHint;
            if (m.LogTerm > 0) hint = _log.FindConflictByTerm(m.RejectHint, m.LogTerm);
            if (pr.BackOffAfterRejection(m.Index, hint))
            {
                if (pr.State == ReplicationState.Replicate) pr.BecomeProbe();
                SendAppend(m.From, sendIfEmpty: true);
            }
            return;
        }
        var updated = pr.MaybeUpdate(m.Index);
        if (updated || (pr.State == ReplicationState.Probe && pr.Match == m.Index))
        {
            switch (pr.State)
            {
                case ReplicationState.Probe:
                    pr.BecomeReplicate();
                    break;
                case ReplicationState.Snapshot when pr.Match >= pr.PendingSnapshot:
                    pr.BecomeProbe();
                    pr.BecomeReplicate();
                    break;
                case ReplicationState.Replicate:
                    pr.Inflights.FreeUpTo(m.Index);
                    break;
            }
            if (MaybeCommit()) _commitBroadcastPending = true;
            // Committing may have ended this leadership (its own removal committed).
            if (Role != Role.Leader) return;
            // Keep the pipeline full.
            while (SendAppend(m.From, sendIfEmpty: false)) { }
            if (m.From == _leadTransferee && pr.Match == _log.LastIndex) SendTimeoutNow(m.From);
        }
    }

    private void HandleHeartbeatResponse(Message m)
    {
        if (!_tracker.TryGet(m.From, out var pr)) return;
        pr.RecentActive = true;
        pr.ProbeSent = false;
        // A live follower with a full window may have lost an Append: free a slot so one more can go.
        if (pr.State == ReplicationState.Replicate && pr.Inflights.Full) pr.Inflights.FreeOldest();
        if (pr.Match < _log.LastIndex) SendAppend(m.From, sendIfEmpty: true);
        _reads.Ack(m.From, m.Context);
        ReleaseReads();
    }

    /// <summary>Sends what the follower needs next; false if nothing was sent (paused, or nothing to send).</summary>
    private bool SendAppend(string to, bool sendIfEmpty)
    {
        if (Role != Role.Leader || !_tracker.TryGet(to, out var pr) || pr.IsPaused) return false;
        var prevIndex = pr.Next - 1;
        var prevTerm = _log.TryTerm(prevIndex);
        var entries = prevTerm is null ? null : _log.Slice(pr.Next, _log.LastIndex + 1, _options.MaxSizePerMessage);
        if (prevTerm is null || entries is null) return SendSnapshot(to, pr);
        if (entries.Length == 0 && !sendIfEmpty) return false;
        Send(new Message
        {
            Type = MessageType.Append, From = Id, To = to, Term = Term,
            Index = prevIndex, LogTerm = prevTerm.Value, Entries = entries, Commit = _log.Committed,
        });
        if (pr.State == ReplicationState.Replicate)
        {
            if (entries.Length > 0)
            {
                long bytes = 0;
                foreach (var e in entries) bytes += e.Size;
                pr.OptimisticUpdate(entries[^1].Index);
                pr.Inflights.Add(entries[^1].Index, bytes);
            }
        }
        else
        {
            pr.ProbeSent = true;
        }
        return true;
    }

    private bool SendSnapshot(string to, Progress pr)
    {
        // A snapshot to a node that has not answered lately would likely be wasted: wait until it does.
        if (!pr.RecentActive) return false;
        var snapshot = _log.Snapshot;
        if (snapshot.IsEmpty) throw new InvalidOperationException($"entries for {to} are compacted but there is no snapshot");
        pr.BecomeSnapshot(snapshot.Index);
        Send(new Message { Type = MessageType.InstallSnapshot, From = Id, To = to, Term = Term, Snapshot = snapshot });
        return true;
    }

    private void BroadcastHeartbeat(ulong readRound)
    {
        foreach (var (id, pr) in _tracker)
        {
            if (id == Id) continue;
            // A follower may only commit what it is known to hold.
            Send(new Message
            {
                Type = MessageType.Heartbeat, From = Id, To = id, Term = Term,
                Commit = Math.Min(pr.Match, _log.Committed), Context = readRound, Index = _log.Committed,
            });
        }
    }

    /// <summary>
    /// Sends what accumulated since the last Ready: one Append per follower carrying every proposal that arrived
    /// (and the new commit index, alone if need be unless <see cref="DeferCommitOnlyAppends"/>), and one heartbeat
    /// round for the reads that arrived, unless the last round is still unanswered (then they wait for it and share
    /// the next).
    /// </summary>
    private void FlushBroadcasts()
    {
        if (Role != Role.Leader)
        {
            _broadcastPending = _commitBroadcastPending = false;
            return;
        }
        var commitOnly = CommitOnlyAppendsDue;
        if (_broadcastPending || commitOnly)
        {
            var everyoneTold = true;
            foreach (var (id, _) in _tracker)
            {
                if (id == Id) continue;
                if (SendAppend(id, sendIfEmpty: commitOnly))
                {
                    while (SendAppend(id, sendIfEmpty: false)) { }
                }
                else
                {
                    everyoneTold = false;
                }
            }
            _broadcastPending = false;
            // Every Append carries the commit index. A deferred one that some follower got no Append for waits for
            // the deferral to end.
            _commitBroadcastPending = _commitBroadcastPending && !commitOnly && !everyoneTold;
        }
        if (_reads.RoundDue)
        {
            BroadcastHeartbeat(_reads.StartRound());
            ReleaseReads();
        }
    }

    /// <summary>
    /// Advances the commit index to the highest index a quorum of voters holds, if that entry is of this leader's
    /// term (§5.4.2: an older term's entry is committed only indirectly).
    /// </summary>
    private bool MaybeCommit()
    {
        var candidate = _tracker.CommittedIndex();
        if (candidate <= _log.Committed || _log.TryTerm(candidate) != Term) return false;
        _log.CommitTo(candidate);
        OnLeaderCommitted();
        return true;
    }

    private void OnLeaderCommitted()
    {
        if (_log.Committed >= _ownTermStart) ServeDeferredReads();
        MaybeStepDownAfterRemoval();
    }

    private void ReduceUncommitted(List<Entry> committed)
    {
        foreach (var e in committed)
        {
            if (e.Term == Term) _uncommittedBytes -= e.Size;
        }
        if (_uncommittedBytes < 0) _uncommittedBytes = 0;
    }

    /// <summary>The runtime could not deliver a snapshot (or the follower refused it): go back to probing.</summary>
    public void ReportSnapshotFailure(string to) => ReportSnapshot(to, succeeded: false);

    /// <summary>
    /// The outcome of a snapshot transfer to <paramref name="to"/>. Stored: the follower holds at least the snapshot, so
    /// probe from just after it (its answer to the install may have been lost). Failed: probe from what it is known to
    /// hold. Either way the probe waits for the next heartbeat answer, so a dead follower is not flooded.
    /// </summary>
    public void ReportSnapshot(string to, bool succeeded)
    {
        EnsureNoReadyOutstanding();
        if (Role != Role.Leader || !_tracker.TryGet(to, out var pr) || pr.State != ReplicationState.Snapshot) return;
        if (succeeded) pr.BecomeProbe();
        else pr.SnapshotFailed();
        pr.ProbeSent = true;
    }

    /// <summary>The transport found <paramref name="to"/> unreachable: stop pipelining to it until it answers.</summary>
    public void ReportUnreachable(string to)
    {
        EnsureNoReadyOutstanding();
        if (Role != Role.Leader || !_tracker.TryGet(to, out var pr)) return;
        if (pr.State == ReplicationState.Replicate) pr.BecomeProbe();
    }
}
