namespace RaftKv.Raft;

// Leader election (Raft §5.2), the up-to-date check (§5.4.1), pre-vote (thesis §9.6) and check-quorum / leader lease (thesis §6.2, §4.2.3).
public sealed partial class RaftCore
{
    /// <summary>
    /// May this node campaign? Voters of the newest configuration may; so may a node whose removal is appended but
    /// not committed, because it may hold the only copy that can commit it. Example: a leader appends its own removal
    /// and then loses its quorum; the remaining voter's log lacks the removal, so it can never win this node's vote,
    /// and only this node, counting the votes of the new configuration (thesis §4.2.2), can finish the change.
    /// A configuration naming another incarnation of this id names a previous life of this server, whose log this one
    /// lost: it is not a voter until a configuration names this incarnation.
    /// </summary>
    private bool Promotable =>
        _log.PendingSnapshot is null && (IsVoterIn(Config) || (ConfigChangePending && IsVoterIn(ConfigAt(_log.Committed))));

    private void TickElection()
    {
        _electionElapsed++;
        if (Promotable && _electionElapsed >= _randomizedElectionTimeout)
        {
            _electionElapsed = 0;
            StartElection(transfer: false, "election timeout");
        }
    }

    private void TickLeader()
    {
        _heartbeatElapsed++;
        _electionElapsed++;
        if (_electionElapsed >= _options.ElectionTicks)
        {
            _electionElapsed = 0;
            if (_options.CheckQuorum && !_tracker.QuorumActive(Id))
            {
                // We cannot reach a quorum: stop serving as leader so clients go elsewhere.
                BecomeFollower(Term, null, "no quorum heard from within an election timeout");
                return;
            }
            if (_leadTransferee is not null) AbortLeaderTransfer("the target did not take over within an election timeout");
            ForgetRemovedMembers();
        }
        foreach (var (_, pr) in _tracker)
        {
            // A snapshot lost on the way is never answered: retry after an election timeout, unless the runtime reports
            // every transfer's outcome (a large snapshot takes far longer than that, and a retry would start it over).
            if (pr.State == ReplicationState.Snapshot && !_options.SnapshotOutcomesReported && ++pr.SnapshotTicks > _options.ElectionTicks) pr.SnapshotFailed();
        }
        if (_heartbeatElapsed >= _options.HeartbeatTicks)
        {
            _heartbeatElapsed = 0;
            BroadcastHeartbeat(_reads.Round);
        }
    }

    /// <summary>Starts an election: a pre-vote round first unless this is a leadership transfer.</summary>
    private void StartElection(bool transfer, string reason)
    {
        if (Role == Role.Leader || !Promotable) return;
        if (_options.PreVote && !transfer) StartCampaign(MessageType.PreVote, transfer, reason);
        else StartCampaign(MessageType.Vote, transfer, reason);
    }

    private void StartCampaign(MessageType type, bool transfer, string reason)
    {
        ulong voteTerm;
        if (type == MessageType.PreVote)
        {
            // Pre-candidates keep their term and vote: nothing changes unless a quorum would elect us.
            Reset(Term);
            Role = Role.PreCandidate;
            voteTerm = Term + 1;
            Trace(RaftTraceKind.BecamePreCandidate, reason: reason);
        }
        else
        {
            Reset(Term + 1);
            Role = Role.Candidate;
            VotedFor = Id;
            voteTerm = Term;
            Trace(RaftTraceKind.BecameCandidate, reason: reason);
        }
        _tracker.ClearProgress();
        switch (_tracker.RecordVote(Id, granted: true))
        {
            case VoteOutcome.Won:
                if (type == MessageType.PreVote) StartCampaign(MessageType.Vote, transfer, "won the pre-vote");
                else BecomeLeader();
                return;
            case VoteOutcome.Lost:
                LoseElection();
                return;
        }
        foreach (var v in Config.Voters)
        {
            if (v == Id) continue;
            Send(new Message
            {
                Type = type, From = Id, To = v, Term = voteTerm,
                Index = _log.LastIndex, LogTerm = _log.LastTerm, Transfer = transfer,
            });
        }
    }

    /// <summary>
    /// Term rules common to every message (Figure 2, "rules for all servers"). Returns false when the message is
    /// dealt with here and must go no further.
    /// </summary>
    private bool StepTerm(Message m)
    {
        if (m.Term > Term)
        {
            if (m.Type is MessageType.Vote or MessageType.PreVote)
            {
                // Leader lease: while we hear from a leader, a vote request is from a node that was cut off
                // (or a removed one); ignoring it keeps it from deposing a healthy leader. A transfer is deliberate.
                var inLease = _options.CheckQuorum && Leader is not null && _electionElapsed < _options.ElectionTicks;
                if (inLease && !m.Transfer)
                {
                    TraceVoteRefused(m, "a leader was heard from within the election timeout");
                    return false;
                }
            }
            if (m.Type == MessageType.PreVote)
            {
                // A pre-vote never changes our term.
            }
            else if (m.Type == MessageType.PreVoteResponse && !m.Reject)
            {
                // A granted pre-vote carries the term we would campaign in; it is not a newer term.
            }
            else
            {
                var leader = m.Type is MessageType.Append or MessageType.Heartbeat or MessageType.InstallSnapshot ? m.From : null;
                // A vote request from the transfer target means it is campaigning as asked: the transfer did its part.
                var handedOver = m.Transfer && _leadTransferee is not null && m.From == _leadTransferee;
                if (handedOver) _leadTransferee = null;
                BecomeFollower(m.Term, leader, handedOver ? "handed leadership over" : "a message of a higher term");
                if (handedOver) Trace(RaftTraceKind.TransferCompleted, m.From);
            }
        }
        else if (m.Term < Term)
        {
            if (m.Type == MessageType.Append) Trace(RaftTraceKind.AppendRejected, m.From, m.Index, "stale term");
            else if (m.Type is MessageType.Vote or MessageType.PreVote) TraceVoteRefused(m, "stale term");
            if ((_options.CheckQuorum || _options.PreVote) && m.Type is MessageType.Append or MessageType.Heartbeat)
            {
                // A stale leader (e.g. one partitioned away) learns our term from this and steps down. Without it, a node
                // whose term rose through pre-vote-less elections could never get the old leader to yield.
                Send(new Message { Type = MessageType.AppendResponse, From = Id, To = m.From, Term = Term });
            }
            else if (m.Type == MessageType.PreVote)
            {
                Send(new Message { Type = MessageType.PreVoteResponse, From = Id, To = m.From, Term = Term, Reject = true });
            }
            return false;
        }
        return true;
    }

    /// <summary>RequestVote receiver (Figure 2): one vote per term, only for a log at least as up-to-date as ours.</summary>
    private void HandleVoteRequest(Message m)
    {
        var responseType = m.Type == MessageType.Vote ? MessageType.VoteResponse : MessageType.PreVoteResponse;
        var canVote = VotedFor == m.From
            || (VotedFor is null && Leader is null)
            || (m.Type == MessageType.PreVote && m.Term > Term);
        if (canVote && _log.IsUpToDate(m.Index, m.LogTerm))
        {
            // The response carries the term asked about, so the candidate does not mistake it for a stale one.
            Send(new Message { Type = responseType, From = Id, To = m.From, Term = m.Term });
            if (m.Type == MessageType.Vote)
            {
                _electionElapsed = 0;
                VotedFor = m.From;
                Trace(RaftTraceKind.VoteGranted, m.From);
            }
            else
            {
                Trace(RaftTraceKind.PreVoteGranted, m.From, m.Term);
            }
        }
        else
        {
            Send(new Message { Type = responseType, From = Id, To = m.From, Term = Term, Reject = true });
            TraceVoteRefused(m, !canVote ? (VotedFor is not null ? "already voted for another node in this term" : "a leader is known") : "the candidate's log is behind");
        }
    }

    private void TraceVoteRefused(Message m, string reason)
    {
        if (m.Type == MessageType.Vote) Trace(RaftTraceKind.VoteRejected, m.From, reason: reason);
        else Trace(RaftTraceKind.PreVoteRejected, m.From, m.Term, reason);
    }

    private void LoseElection()
    {
        Trace(RaftTraceKind.ElectionLost, reason: Role == Role.PreCandidate ? "a majority refused the pre-vote" : "a majority refused the vote");
        BecomeFollower(Term, null, "lost the election");
    }

    private void StepCandidate(Message m)
    {
        switch (m.Type)
        {
            case MessageType.Append:
            case MessageType.Heartbeat:
            case MessageType.InstallSnapshot:
                // Someone won this term.
                BecomeFollower(m.Term, m.From, "another node won this term");
                StepFollower(m);
                break;
            case MessageType.VoteResponse when Role == Role.Candidate:
            case MessageType.PreVoteResponse when Role == Role.PreCandidate:
                switch (_tracker.RecordVote(m.From, !m.Reject))
                {
                    case VoteOutcome.Won:
                        if (Role == Role.PreCandidate) StartCampaign(MessageType.Vote, transfer: false, "won the pre-vote");
                        else BecomeLeader();
                        break;
                    case VoteOutcome.Lost:
                        LoseElection();
                        break;
                }
                break;
            case MessageType.ReadIndex:
                RejectRead(m);
                break;
            case MessageType.ReadIndexResponse:
                HandleReadIndexResponse(m);
                break;
        }
    }
}
