using RaftKv.Raft;

namespace RaftKv.Node;

/// <summary>One server as this node sees it.</summary>
/// <param name="Id">Server id.</param>
/// <param name="RaftAddress">Raft (peer) address.</param>
/// <param name="HttpAddress">HTTP API address.</param>
/// <param name="Voter">True for voters, false for non-voters.</param>
/// <param name="State">"Leader", "Follower", "Candidate", "NonVoter", or "Unknown" when this node cannot tell.</param>
/// <param name="MatchIndex">Highest index known replicated there (known on the leader only, else null).</param>
public sealed record ServerStatus(string Id, string RaftAddress, string HttpAddress, bool Voter, string State, ulong? MatchIndex)
{
    /// <summary>The member's incarnation as the configuration records it (0: not known).</summary>
    public ulong Incarnation { get; init; }
}

/// <summary>Where a node stands in its cluster's configuration.</summary>
public enum Membership
{
    /// <summary>Not in any configuration yet (a new node waiting to be added), or not in it for now.</summary>
    NotJoined,
    /// <summary>A voter.</summary>
    Voter,
    /// <summary>A non-voter: receives the log, never votes.</summary>
    NonVoter,
    /// <summary>Removed from the cluster: it no longer campaigns or serves.</summary>
    Removed,
    /// <summary>The configuration names an earlier incarnation of this id: this node lost that one's data and must rejoin.</summary>
    PreviousIncarnation,
}

/// <summary>A consistent picture of a node, taken on its raft loop.</summary>
public sealed record NodeStatus
{
    /// <summary>This node's id.</summary>
    public required string Id { get; init; }
    /// <summary>This node's advertised raft address.</summary>
    public required string RaftAddress { get; init; }
    /// <summary>This node's advertised HTTP address.</summary>
    public required string HttpAddress { get; init; }
    /// <summary>Role in the current term.</summary>
    public required Role Role { get; init; }
    /// <summary>Current term.</summary>
    public required ulong Term { get; init; }
    /// <summary>Leader id, if known.</summary>
    public string? LeaderId { get; init; }
    /// <summary>Leader's raft address, if known.</summary>
    public string? LeaderRaftAddress { get; init; }
    /// <summary>Leader's HTTP address, if known.</summary>
    public string? LeaderHttpAddress { get; init; }
    /// <summary>Highest committed index known.</summary>
    public required ulong CommitIndex { get; init; }
    /// <summary>Highest index applied to the key-value map.</summary>
    public required ulong AppliedIndex { get; init; }
    /// <summary>Last index in the log.</summary>
    public required ulong LastLogIndex { get; init; }
    /// <summary>Term of the last entry in the log.</summary>
    public required ulong LastLogTerm { get; init; }
    /// <summary>Newest snapshot's index (0: none).</summary>
    public required ulong LastSnapshotIndex { get; init; }
    /// <summary>Newest snapshot's term.</summary>
    public required ulong LastSnapshotTerm { get; init; }
    /// <summary>Index of the entry holding the configuration in force.</summary>
    public required ulong ConfigurationIndex { get; init; }
    /// <summary>Committed entries not yet applied.</summary>
    public required ulong FsmPending { get; init; }
    /// <summary>Time since this node last heard from its leader (zero on the leader, null if never).</summary>
    public TimeSpan? LastContact { get; init; }
    /// <summary>Every member of the configuration in force.</summary>
    public required IReadOnlyList<ServerStatus> Servers { get; init; }
    /// <summary>Number of keys in the map.</summary>
    public required int Keys { get; init; }
    /// <summary>The identity of this node's cluster (empty: not in one yet, or one founded before identities existed).</summary>
    public string ClusterId { get; init; } = "";
    /// <summary>This node's incarnation: drawn when its storage was created.</summary>
    public ulong Incarnation { get; init; }
    /// <summary>Where this node stands in the configuration.</summary>
    public Membership Membership { get; init; } = Membership.Voter;
    /// <summary>
    /// The commit index the leader had when this node first heard from it after starting (the leader: its own), or
    /// null before that: the node is not ready until it has applied at least that far.
    /// </summary>
    public ulong? CatchUpTarget { get; init; }

    /// <summary>
    /// True when this node is a member, knows a leader of its cluster, has applied at least the commit index the leader
    /// had when it (re)started, and everything it knows committed.
    /// </summary>
    public bool Ready => LeaderId is not null && Membership is Membership.Voter or Membership.NonVoter
        && CatchUpTarget is { } target && AppliedIndex >= target && AppliedIndex >= CommitIndex;

    /// <summary>Why <see cref="Ready"/> is false, in words for an operator; null when ready.</summary>
    public string? NotReadyReason => Ready ? null : Membership switch
    {
        Membership.Removed => "this node was removed from the cluster; it no longer campaigns or serves. Add it again with /join, or stop it",
        Membership.PreviousIncarnation => "the cluster still lists an earlier incarnation of this node, whose data this node lost; it is let in once it rejoins (raftkvd started with -join does so by itself)",
        Membership.NotJoined => "not a member of a cluster yet (waiting to be added, or to receive the configuration that adds it)",
        _ when LeaderId is null => "no leader known (an election is in progress, or a quorum is unreachable)",
        _ when CatchUpTarget is null => "waiting to hear from the leader how far the log goes",
        _ => $"catching up: applied {AppliedIndex} of {Math.Max(CommitIndex, CatchUpTarget ?? 0)}",
    };
}
