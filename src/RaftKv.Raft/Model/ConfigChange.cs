namespace RaftKv.Raft;

/// <summary>Kinds of single-server membership change (thesis §4.1).</summary>
public enum ConfigChangeType
{
    /// <summary>Add a voter, promote a non-voter, or update a voter's address.</summary>
    AddVoter,

    /// <summary>Add a non-voter (receives the log, never votes, not in any quorum), or update its address.</summary>
    AddNonVoter,

    /// <summary>Remove a member, voter or not.</summary>
    Remove,

    /// <summary>Give a cluster founded before cluster identities existed its id (members unchanged).</summary>
    AssignClusterId,
}

/// <summary>A single-server membership change requested of the leader.</summary>
/// <param name="Type">What to do.</param>
/// <param name="NodeId">The server it concerns.</param>
/// <param name="Address">Its raft address, for additions (empty keeps the one known).</param>
/// <param name="Incarnation">For additions: the server's incarnation (0 keeps the one known); another incarnation than
/// the member's replaces it (see <see cref="ClusterConfig.Apply"/>).</param>
/// <param name="ClusterId">For <see cref="ConfigChangeType.AssignClusterId"/>: the id.</param>
public readonly record struct ConfigChange(ConfigChangeType Type, string NodeId, string Address = "", ulong Incarnation = 0, string ClusterId = "")
{
    /// <summary>For additions: the member's <see cref="Member.HttpAddress"/> (empty: none); null keeps the one known.</summary>
    public string? HttpAddress { get; init; }
}
