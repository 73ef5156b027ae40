namespace RaftKv.Raft;

/// <summary>The role a node plays in its current term.</summary>
public enum Role
{
    /// <summary>Follows a leader (or waits for one).</summary>
    Follower,

    /// <summary>Asking for pre-votes: probing whether an election could succeed, without raising the term (thesis §9.6).</summary>
    PreCandidate,

    /// <summary>Asking for votes in a new term.</summary>
    Candidate,

    /// <summary>Leads the cluster in its term.</summary>
    Leader,
}
