namespace RaftKv.Node;

/// <summary>Why a node could not do what was asked. The server maps each kind to an HTTP status.</summary>
public enum NodeErrorKind
{
    /// <summary>This node is not the leader; <see cref="NodeException.LeaderId"/> and <see cref="NodeException.LeaderHttpAddress"/> say who is, if known.</summary>
    NotLeader,
    /// <summary>No leader is known (an election is under way, or no quorum is reachable).</summary>
    NoLeader,
    /// <summary>The request timed out. For a write: it may or may not have been applied.</summary>
    Timeout,
    /// <summary>The write was not applied: leadership changed before it committed, or its request timed out before it was proposed.</summary>
    NotApplied,
    /// <summary>The leader is busy (too many uncommitted writes, a configuration change or transfer in progress); retry.</summary>
    Busy,
    /// <summary>The request makes no sense (invalid membership change, bad argument).</summary>
    BadRequest,
    /// <summary>The named node or key does not exist.</summary>
    NotFound,
    /// <summary>The node is shutting down or not yet started.</summary>
    Unavailable,
    /// <summary>The request contradicts the cluster's identity: a node of another cluster asked to join, say.</summary>
    Conflict,
    /// <summary>The write is larger than the cluster can replicate (<see cref="EntryLimits"/>); it was not applied.</summary>
    TooLarge,
}

/// <summary>A failure a client can meet, with what it needs to decide what to do next.</summary>
public sealed class NodeException(NodeErrorKind kind, string message, string? leaderId = null, string? leaderHttpAddress = null)
    : Exception(message)
{
    /// <summary>What went wrong.</summary>
    public NodeErrorKind Kind { get; } = kind;

    /// <summary>The leader's id, when known.</summary>
    public string? LeaderId { get; } = leaderId;

    /// <summary>The leader's HTTP address, when known.</summary>
    public string? LeaderHttpAddress { get; } = leaderHttpAddress;
}
