using RaftKv.Raft;

namespace RaftKv.Node;

/// <summary>One server as this node sees it.</summary>
/// <param name="Id">Server id.</param>
/// <param name="RaftAddress">Raft (peer) address.</param>
/// <param name="HttpAddress">HTTP API address.</param>
/// <param name="Voter">True for voters, false for non-voters.</param>
/// <param name="State">"Leader", "Follower", "Candidate", "NonVoter", or "Unknown" when this node cannot tell.</param>
/// <param name="MatchIndex">Highest index known replicated there (known on the leader only, else null).</param>
public sealed record ServerStatus(string Id, string RaftAddress, string HttpAddress, bool Voter, string State, ulong? MatchIndex);

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
    /// <summary>True when this node knows a leader and has applied everything it knows committed.</summary>
    public bool Ready => LeaderId is not null && AppliedIndex >= CommitIndex;
}
