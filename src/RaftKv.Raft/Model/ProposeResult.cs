namespace RaftKv.Raft;

/// <summary>Why a proposal, configuration change, read or transfer was refused.</summary>
public enum Refusal
{
    /// <summary>Not refused.</summary>
    None,
    /// <summary>This node is not the leader; <see cref="ProposeResult.Leader"/> names the one it knows, if any.</summary>
    NotLeader,
    /// <summary>The leader is handing leadership over and takes no proposals meanwhile.</summary>
    TransferInProgress,
    /// <summary>Too many bytes are proposed and not yet committed; retry later.</summary>
    QueueFull,
    /// <summary>A configuration change is still uncommitted, or this leader has not yet committed an entry of its term.</summary>
    ConfigChangeInProgress,
    /// <summary>The change makes no sense for the current configuration (see the message).</summary>
    InvalidConfigChange,
    /// <summary>Leadership transfer to a node that is not a voter, or unknown.</summary>
    InvalidTransferTarget,
}

/// <summary>What became of a proposal: accepted at (Index, Term), or refused with a reason.</summary>
public readonly record struct ProposeResult(Refusal Refusal, ulong Index, ulong Term, string? Leader, string? Message)
{
    /// <summary>True when the entry was appended to the leader's log (it is not committed yet).</summary>
    public bool Accepted => Refusal == Refusal.None;

    internal static ProposeResult Ok(ulong index, ulong term, string? leader) => new(Refusal.None, index, term, leader, null);

    internal static ProposeResult Refused(Refusal why, string? leader, string message) => new(why, 0, 0, leader, message);
}
