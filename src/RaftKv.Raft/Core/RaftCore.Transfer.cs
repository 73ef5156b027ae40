namespace RaftKv.Raft;

// Leadership transfer (thesis §3.10).
public sealed partial class RaftCore
{
    /// <summary>The node leadership is being handed to, or null.</summary>
    public string? LeadTransferee => _leadTransferee;

    /// <summary>
    /// Hands leadership to <paramref name="target"/>: the leader stops taking proposals, brings the target's log up to
    /// date, then tells it to campaign at once. Abandoned after an election timeout if the target has not taken over.
    /// </summary>
    public ProposeResult TransferLeadership(string target)
    {
        EnsureNoReadyOutstanding();
        if (Role != Role.Leader)
            return ProposeResult.Refused(Refusal.NotLeader, Leader, Leader is null ? "no leader is known" : $"not the leader; the leader is {Leader}");
        if (target == Id) return ProposeResult.Ok(0, Term, Id);
        if (!Config.IsVoter(target) || !_tracker.TryGet(target, out var progress))
            return ProposeResult.Refused(Refusal.InvalidTransferTarget, Leader, $"'{target}' is not a voter of this cluster");
        if (_leadTransferee == target) return ProposeResult.Ok(0, Term, Id);
        AbortLeaderTransfer("another transfer was asked for");
        _leadTransferee = target;
        Trace(RaftTraceKind.TransferStarted, target);
        // Reuse the election timer as the transfer deadline (checked in TickLeader).
        _electionElapsed = 0;
        if (progress.Match == _log.LastIndex) SendTimeoutNow(target);
        else SendAppend(target, sendIfEmpty: true);
        return ProposeResult.Ok(0, Term, Id);
    }

    private void SendTimeoutNow(string to) =>
        Send(new Message { Type = MessageType.TimeoutNow, From = Id, To = to, Term = Term });

    private void AbortLeaderTransfer(string reason)
    {
        if (_leadTransferee is null) return;
        Trace(RaftTraceKind.TransferAborted, _leadTransferee, reason: reason);
        _leadTransferee = null;
    }
}
