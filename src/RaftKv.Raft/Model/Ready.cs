namespace RaftKv.Raft;

/// <summary>Role, leader and term: volatile state the runtime reports but never persists.</summary>
public readonly record struct SoftState(Role Role, string? Leader, ulong Term);

/// <summary>A confirmed read: once the state machine has applied <paramref name="Index"/>, request <paramref name="RequestId"/> may be served (thesis §6.4).</summary>
public readonly record struct ReadState(ulong RequestId, ulong Index);

/// <summary>Why the core could not confirm a read.</summary>
public enum ReadFailureReason
{
    /// <summary>This node knows no leader to ask (an election may be under way).</summary>
    NoLeader,
    /// <summary>The leadership the read relied on ended while it waited: this node's, or that of the leader it asked.</summary>
    LeadershipChanged,
    /// <summary>The node the read was forwarded to answered that it could not confirm it (it no longer leads).</summary>
    NotConfirmedByLeader,
}

/// <summary>A read request the core could not confirm; <paramref name="Leader"/> is the leader known when it failed, if any.</summary>
public readonly record struct FailedRead(ulong RequestId, ReadFailureReason Reason, string? Leader)
{
    /// <summary>The reason in words, for logs and error messages.</summary>
    public string Message => Reason switch
    {
        ReadFailureReason.NoLeader => "no leader is known",
        ReadFailureReason.LeadershipChanged => "leadership changed",
        ReadFailureReason.NotConfirmedByLeader => "the leader could not confirm the read",
        _ => Reason.ToString(),
    };
}

/// <summary>
/// Everything a core asks of the runtime after some input, to be handled in this order and acknowledged with
/// <see cref="RaftCore.Advance"/>:
/// <list type="number">
/// <item><see cref="EagerMessages"/> may be sent at once, even before the local writes are durable: they are a
/// leader's appends, heartbeats and snapshots, and the leader counts its own copy of an entry only after Advance
/// reports it durable (thesis §10.2.1).</item>
/// <item>Persist <see cref="Snapshot"/> (install it into the log storage), then <see cref="Entries"/>, then
/// <see cref="HardState"/>, and make them durable with one sync when <see cref="MustSync"/> says so.</item>
/// <item>Only then send <see cref="Messages"/>: they include votes and append replies, which promise that the
/// entries and hard state above are on disk.</item>
/// <item>Restore the state machine from <see cref="Snapshot"/> if set, then apply <see cref="CommittedEntries"/> in order.</item>
/// <item>Serve <see cref="ReadStates"/> once their index is applied; fail <see cref="FailedReads"/>.</item>
/// </list>
/// The lists belong to the core and are valid only until <see cref="RaftCore.Advance"/>.
/// </summary>
public sealed class Ready
{
    internal readonly List<Entry> EntriesList = [];
    internal readonly List<Entry> CommittedList = [];
    internal readonly List<Message> EagerList = [];
    internal readonly List<Message> MessageList = [];
    internal readonly List<ReadState> ReadStateList = [];
    internal readonly List<FailedRead> FailedReadList = [];

    /// <summary>The hard state to persist, when it changed.</summary>
    public HardState? HardState { get; internal set; }

    /// <summary>A snapshot received from the leader, to install before anything else; null when none.</summary>
    public SnapshotMetadata? Snapshot { get; internal set; }

    /// <summary>Entries to append to the log storage (an entry at or below its last index replaces the suffix from there).</summary>
    public IReadOnlyList<Entry> Entries => EntriesList;

    /// <summary>Messages that may leave before the writes above are durable.</summary>
    public IReadOnlyList<Message> EagerMessages => EagerList;

    /// <summary>Messages that may leave only after the writes above are durable.</summary>
    public IReadOnlyList<Message> Messages => MessageList;

    /// <summary>Committed entries to apply, in order, after persisting.</summary>
    public IReadOnlyList<Entry> CommittedEntries => CommittedList;

    /// <summary>Reads confirmed by a quorum.</summary>
    public IReadOnlyList<ReadState> ReadStates => ReadStateList;

    /// <summary>Reads refused.</summary>
    public IReadOnlyList<FailedRead> FailedReads => FailedReadList;

    /// <summary>Role, leader and term, when any of them changed.</summary>
    public SoftState? SoftState { get; internal set; }

    /// <summary>
    /// True when something must be made durable (entries, a new term or vote, a snapshot) before <see cref="Messages"/>
    /// leave. A hard state whose only change is the commit index is written but need not be synced: a commit index lost
    /// in a crash only comes back lower, which is safe (the leader tells it again), and an fsync per commit advance would
    /// double the syncs of a busy node (etcd's rule too).
    /// </summary>
    public bool MustSync => TermOrVoteChanged || Snapshot is not null || EntriesList.Count > 0;

    /// <summary>True when <see cref="HardState"/> carries a new term or vote (not just a new commit index).</summary>
    internal bool TermOrVoteChanged { get; set; }

    internal void Clear()
    {
        EntriesList.Clear();
        CommittedList.Clear();
        EagerList.Clear();
        MessageList.Clear();
        ReadStateList.Clear();
        FailedReadList.Clear();
        HardState = null;
        TermOrVoteChanged = false;
        Snapshot = null;
        SoftState = null;
    }
}
