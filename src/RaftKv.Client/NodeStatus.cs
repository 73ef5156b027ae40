using System.Text.Json.Serialization;

namespace RaftKv.Client;

/// <summary>One node's view of itself and the cluster: the server's <c>GET /status</c>.</summary>
public sealed class RaftKvNodeStatus
{
    /// <summary>The node's id.</summary>
    [JsonPropertyName("id")] public string Id { get; init; } = "";

    /// <summary>Its role: Leader, Follower, Candidate or PreCandidate.</summary>
    [JsonPropertyName("state")] public string State { get; init; } = "";

    /// <summary>Its current term.</summary>
    [JsonPropertyName("term")] public ulong Term { get; init; }

    /// <summary>True when it knows a leader and has applied everything it knows committed.</summary>
    [JsonPropertyName("ready")] public bool Ready { get; init; }

    /// <summary>Its raft (peer) address.</summary>
    [JsonPropertyName("raft_address")] public string RaftAddress { get; init; } = "";

    /// <summary>Its HTTP address, as advertised to the cluster.</summary>
    [JsonPropertyName("http_address")] public string HttpAddress { get; init; } = "";

    /// <summary>The leader it knows, or null during an election.</summary>
    [JsonPropertyName("leader")] public RaftKvMember? Leader { get; init; }

    /// <summary>Every member of the configuration except the leader.</summary>
    [JsonPropertyName("followers")] public IReadOnlyList<RaftKvFollower> Followers { get; init; } = [];

    /// <summary>Its log and state-machine indexes.</summary>
    [JsonPropertyName("log")] public RaftKvLogState Log { get; init; } = new();

    /// <summary>Milliseconds since it last heard from the leader (null on the leader itself or before any contact).</summary>
    [JsonPropertyName("last_contact_ms")] public double? LastContactMs { get; init; }

    /// <summary>Keys in its state machine.</summary>
    [JsonPropertyName("keys")] public long Keys { get; init; }

    /// <summary>True when this node is the leader.</summary>
    [JsonIgnore] public bool IsLeader => State == "Leader";
}

/// <summary>A cluster member as <c>/status</c> names the leader.</summary>
public class RaftKvMember
{
    /// <summary>The member's id.</summary>
    [JsonPropertyName("id")] public string Id { get; init; } = "";

    /// <summary>Its raft address.</summary>
    [JsonPropertyName("raft_address")] public string RaftAddress { get; init; } = "";

    /// <summary>Its HTTP address (empty if it joined without one).</summary>
    [JsonPropertyName("http_address")] public string HttpAddress { get; init; } = "";
}

/// <summary>A non-leader member, as <c>/status</c> lists it.</summary>
public sealed class RaftKvFollower : RaftKvMember
{
    /// <summary>Whether it votes (false for a non-voter).</summary>
    [JsonPropertyName("voter")] public bool Voter { get; init; }

    /// <summary>Its role as the answering node knows it.</summary>
    [JsonPropertyName("state")] public string State { get; init; } = "";

    /// <summary>The highest log index the leader knows it holds (only when the answering node is the leader).</summary>
    [JsonPropertyName("match_index")] public ulong? MatchIndex { get; init; }
}

/// <summary>Log and state-machine indexes of one node.</summary>
public sealed class RaftKvLogState
{
    /// <summary>Highest index known committed.</summary>
    [JsonPropertyName("commit_index")] public ulong CommitIndex { get; init; }

    /// <summary>Highest index applied to the key-value map.</summary>
    [JsonPropertyName("applied_index")] public ulong AppliedIndex { get; init; }

    /// <summary>Last index in the log.</summary>
    [JsonPropertyName("last_log_index")] public ulong LastLogIndex { get; init; }

    /// <summary>Term of the last entry in the log.</summary>
    [JsonPropertyName("last_log_term")] public ulong LastLogTerm { get; init; }

    /// <summary>Index of the newest snapshot.</summary>
    [JsonPropertyName("last_snapshot_index")] public ulong LastSnapshotIndex { get; init; }

    /// <summary>Term of the newest snapshot.</summary>
    [JsonPropertyName("last_snapshot_term")] public ulong LastSnapshotTerm { get; init; }

    /// <summary>Index of the entry holding the current configuration.</summary>
    [JsonPropertyName("configuration_index")] public ulong ConfigurationIndex { get; init; }

    /// <summary>Committed entries not yet applied.</summary>
    [JsonPropertyName("fsm_pending")] public ulong FsmPending { get; init; }
}

/// <summary>One member of the cluster and what its own <c>/status</c> said, or why it could not be asked.</summary>
/// <param name="Id">The member's id.</param>
/// <param name="RaftAddress">Its raft address.</param>
/// <param name="HttpAddress">Its HTTP address (empty when unknown).</param>
/// <param name="Status">Its own status, or null when it did not answer.</param>
/// <param name="Error">Why it did not answer, or null.</param>
public sealed record RaftKvMemberStatus(string Id, string RaftAddress, string HttpAddress, RaftKvNodeStatus? Status, string? Error);
