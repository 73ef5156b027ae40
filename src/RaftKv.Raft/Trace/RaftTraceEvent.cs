namespace RaftKv.Raft;

/// <summary>What happened, in a <see cref="RaftTraceEvent"/>.</summary>
public enum RaftTraceKind
{
    /// <summary>The term moved (<see cref="RaftTraceEvent.Term"/> is the new one); the node's vote is cleared.</summary>
    TermChanged,
    /// <summary>Started a pre-vote round (the term does not move); <see cref="RaftTraceEvent.Reason"/> says what started it.</summary>
    BecamePreCandidate,
    /// <summary>Started an election in a new term, voting for itself.</summary>
    BecameCandidate,
    /// <summary>Won the election of its term.</summary>
    BecameLeader,
    /// <summary>A pre-vote round or an election was lost: a majority refused.</summary>
    ElectionLost,
    /// <summary>Became a follower; <see cref="RaftTraceEvent.Peer"/> is the leader if known, <see cref="RaftTraceEvent.Reason"/> why.</summary>
    BecameFollower,
    /// <summary>Granted its pre-vote to <see cref="RaftTraceEvent.Peer"/> (for the term in <see cref="RaftTraceEvent.Index"/>).</summary>
    PreVoteGranted,
    /// <summary>Refused its pre-vote to <see cref="RaftTraceEvent.Peer"/>, or ignored the request; <see cref="RaftTraceEvent.Reason"/> says why.</summary>
    PreVoteRejected,
    /// <summary>Voted for <see cref="RaftTraceEvent.Peer"/> in <see cref="RaftTraceEvent.Term"/>.</summary>
    VoteGranted,
    /// <summary>Refused its vote to <see cref="RaftTraceEvent.Peer"/>, or ignored the request; <see cref="RaftTraceEvent.Reason"/> says why.</summary>
    VoteRejected,
    /// <summary>Refused an Append from <see cref="RaftTraceEvent.Peer"/> whose previous entry (<see cref="RaftTraceEvent.Index"/>) it does not hold, or of a stale term.</summary>
    AppendRejected,
    /// <summary>The leader started handing leadership to <see cref="RaftTraceEvent.Peer"/>.</summary>
    TransferStarted,
    /// <summary>The transfer to <see cref="RaftTraceEvent.Peer"/> ended: it took over.</summary>
    TransferCompleted,
    /// <summary>The transfer to <see cref="RaftTraceEvent.Peer"/> was given up; <see cref="RaftTraceEvent.Reason"/> says why.</summary>
    TransferAborted,
}

/// <summary>
/// One decision of a core, for debugging (see <see cref="RaftOptions.Trace"/>): elections, step-downs, refusals, term
/// changes and leadership transfers. Reasons are fixed phrases, so tracing allocates nothing beyond what the sink does.
/// </summary>
/// <param name="Kind">What happened.</param>
/// <param name="Node">The node it happened on.</param>
/// <param name="Term">The node's term once it happened.</param>
/// <param name="Peer">The other node involved, if any (candidate, leader, transfer target).</param>
/// <param name="Index">A log index or term that goes with the event (see <see cref="RaftTraceKind"/>), else 0.</param>
/// <param name="Reason">Why, in a few words, or null.</param>
public readonly record struct RaftTraceEvent(RaftTraceKind Kind, string Node, ulong Term, string? Peer, ulong Index, string? Reason)
{
    /// <summary>One line: node, term, what happened, to or from whom, and why.</summary>
    public override string ToString()
    {
        var peer = Peer is null ? "" : Kind switch
        {
            RaftTraceKind.BecameFollower => " of " + Peer,
            RaftTraceKind.PreVoteGranted or RaftTraceKind.PreVoteRejected or RaftTraceKind.VoteGranted or RaftTraceKind.VoteRejected => " to " + Peer,
            RaftTraceKind.AppendRejected => " from " + Peer,
            _ => " " + Peer,
        };
        var index = Index == 0 ? "" : Kind switch
        {
            RaftTraceKind.PreVoteGranted or RaftTraceKind.PreVoteRejected => $" for term {Index}",
            _ => $" at index {Index}",
        };
        var reason = Reason is null ? "" : $" ({Reason})";
        return $"{Node} term {Term}: {Kind}{peer}{index}{reason}";
    }
}
