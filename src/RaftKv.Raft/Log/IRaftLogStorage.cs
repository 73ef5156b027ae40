namespace RaftKv.Raft;

/// <summary>
/// The durable log a core reads from and a runtime writes to. The core only ever reads (<see cref="HardState"/>,
/// <see cref="FirstIndex"/> ... <see cref="GetEntries"/>); the runtime persists what each <see cref="Ready"/> asks
/// with the write methods and makes it durable with <see cref="Sync"/> before it sends any message that depends on it.
/// </summary>
/// <remarks>
/// The log holds the entries [FirstIndex, LastIndex]. The entry just before them (FirstIndex - 1) is either the
/// last compacted entry or the last entry of an installed snapshot; its term is still answered by <see cref="Term"/>
/// so that appends after it can be checked.
/// </remarks>
public interface IRaftLogStorage : IDisposable
{
    /// <summary>The hard state as last written.</summary>
    HardState HardState { get; }

    /// <summary>The newest snapshot this storage knows (Empty if none).</summary>
    SnapshotMetadata Snapshot { get; }

    /// <summary>Index of the first entry held (LastIndex + 1 when none is).</summary>
    ulong FirstIndex { get; }

    /// <summary>Index of the last entry held (FirstIndex - 1 when none is).</summary>
    ulong LastIndex { get; }

    /// <summary>Term of the entry at <paramref name="index"/>, for index in [FirstIndex - 1, LastIndex]; throws otherwise.</summary>
    ulong Term(ulong index);

    /// <summary>
    /// Appends the entries in [lo, hi) to <paramref name="into"/>, stopping once their total <see cref="Entry.Size"/>
    /// would exceed <paramref name="maxBytes"/> (at least one entry is always returned). lo and hi must lie in [FirstIndex, LastIndex + 1].
    /// </summary>
    void GetEntries(ulong lo, ulong hi, long maxBytes, List<Entry> into);

    /// <summary>
    /// Appends consecutive entries. If the first one's index is at or below LastIndex, every entry from that index on is
    /// dropped first (a leader overwrote them). The first index must lie in [FirstIndex, LastIndex + 1].
    /// </summary>
    void Append(ReadOnlySpan<Entry> entries);

    /// <summary>Records the hard state.</summary>
    void SetHardState(HardState state);

    /// <summary>Makes every write so far durable (one fsync for a whole batch).</summary>
    /// <exception cref="InvalidOperationException">A sync begun with <see cref="BeginSync"/> is not completed yet.</exception>
    void Sync();

    /// <summary>
    /// Whether a sync can be split off the owner's thread with <see cref="BeginSync"/>. A log with nothing to flush
    /// says no: the runtime then syncs inline, which costs it nothing.
    /// </summary>
    bool SyncsInBackground { get; }

    /// <summary>
    /// The first half of <see cref="Sync"/>, for an owner that flushes on another thread: hands everything written so
    /// far to the operating system and returns the flush that makes it durable. Run <see cref="IBackgroundSync.Flush"/>
    /// on any thread, then <see cref="CompleteSync"/> on the owner's thread, in the order the syncs began.
    /// </summary>
    /// <exception cref="NotSupportedException"><see cref="SyncsInBackground"/> is false.</exception>
    IBackgroundSync BeginSync();

    /// <summary>Finishes a sync begun with <see cref="BeginSync"/> once it was flushed (or covered by a newer flush).</summary>
    void CompleteSync(IBackgroundSync sync);

    /// <summary>Marks the log unusable after a background flush failed, as a failed <see cref="Sync"/> would.</summary>
    void FailSync(Exception error);

    /// <summary>
    /// Hands buffered writes to the operating system without a sync: they then survive a crash of this process, though
    /// not of the machine. Used for a hard state that only moves the commit index, which needs no sync.
    /// </summary>
    void FlushToOs();

    /// <summary>Replaces the whole log by a snapshot received from the leader: no entries, FirstIndex = snapshot.Index + 1.</summary>
    void InstallSnapshot(SnapshotMetadata snapshot);

    /// <summary>Records a snapshot taken locally (the log is unchanged; compact it separately).</summary>
    void SetSnapshot(SnapshotMetadata snapshot);

    /// <summary>Drops the entries up to and including <paramref name="index"/> (which must be at most LastIndex and already covered by a snapshot).</summary>
    void Compact(ulong index);
}
