namespace RaftKv.Raft;

/// <summary>
/// The state a node must persist before it answers votes or appends (Raft Figure 2, "persistent state"),
/// plus the commit index so that a restarted node re-applies without waiting for a leader.
/// </summary>
/// <param name="Term">The latest term this node has seen.</param>
/// <param name="VotedFor">The candidate this node voted for in <paramref name="Term"/>, or null.</param>
/// <param name="Commit">The highest index this node knows to be committed.</param>
public readonly record struct HardState(ulong Term, string? VotedFor, ulong Commit)
{
    /// <summary>The state of a node that has never run.</summary>
    public static HardState Empty => default;

    /// <summary>True for the state of a node that has never run.</summary>
    public bool IsEmpty => Term == 0 && VotedFor is null && Commit == 0;
}
