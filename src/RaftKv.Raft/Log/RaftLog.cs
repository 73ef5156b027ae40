using System.Runtime.InteropServices;

namespace RaftKv.Raft;

/// <summary>
/// The core's view of its log: the durable part in <see cref="IRaftLogStorage"/>, followed by entries appended since
/// the last <see cref="Ready"/> that are not durable yet (the "unstable" tail), and possibly a snapshot received but
/// not yet installed. Also tracks the commit and applied indexes.
/// </summary>
internal sealed class RaftLog
{
    private readonly IRaftLogStorage _storage;
    private readonly List<Entry> _unstable = [];
    private readonly List<Entry> _scratch = [];

    // Index of _unstable[0]; while a received snapshot is pending it is that snapshot's index + 1.
    private ulong _unstableOffset;

    // How many unstable entries (from the front) the current Ready asked to persist.
    private int _inProgress;

    public RaftLog(IRaftLogStorage storage, ulong applied)
    {
        _storage = storage;
        _unstableOffset = storage.LastIndex + 1;
        DurableIndex = storage.LastIndex;
        var snapshotIndex = storage.FirstIndex - 1;
        Committed = Math.Max(storage.HardState.Commit, snapshotIndex);
        if (Committed > storage.LastIndex)
            throw new InvalidOperationException($"stored commit index {Committed} is beyond the last log index {storage.LastIndex}");
        Applied = Math.Max(applied, snapshotIndex);
        if (Applied > Committed)
            throw new InvalidOperationException($"applied index {Applied} is beyond the commit index {Committed}");
    }

    public ulong Committed { get; private set; }

    /// <summary>Everything up to here has been handed to the state machine (and acknowledged with Advance).</summary>
    public ulong Applied { get; private set; }

    /// <summary>A snapshot received from the leader and not yet installed by the runtime.</summary>
    public SnapshotMetadata? PendingSnapshot { get; private set; }

    public ulong FirstIndex => PendingSnapshot is { } s ? s.Index + 1 : _storage.FirstIndex;

    public ulong LastIndex
    {
        get
        {
            if (_unstable.Count > 0) return _unstableOffset + (ulong)_unstable.Count - 1;
            if (PendingSnapshot is { } s) return s.Index;
            return _storage.LastIndex;
        }
    }

    public ulong LastTerm => Term(LastIndex);

    /// <summary>Highest index in storage (handed to the runtime in a Ready and acknowledged with Advance).</summary>
    public ulong StableIndex => _unstableOffset - 1;

    /// <summary>
    /// With <see cref="RaftOptions.AsyncStorageSync"/>: the highest index the runtime has reported durable, lowered
    /// whenever entries at or below it are replaced (their durable copies are no longer this log's entries).
    /// </summary>
    public ulong DurableIndex { get; private set; }

    /// <summary>The runtime reports entries up to <paramref name="index"/> durable (never beyond what is in storage).</summary>
    public void MarkDurable(ulong index)
    {
        var capped = Math.Min(index, StableIndex);
        if (capped > DurableIndex) DurableIndex = capped;
    }

    /// <summary>The snapshot to send a follower that needs compacted entries.</summary>
    public SnapshotMetadata Snapshot => PendingSnapshot ?? _storage.Snapshot;

    /// <summary>Term of the entry at <paramref name="index"/>, or null if it is compacted or beyond the log.</summary>
    public ulong? TryTerm(ulong index)
    {
        if (index >= _unstableOffset)
        {
            var i = index - _unstableOffset;
            return i < (ulong)_unstable.Count ? _unstable[(int)i].Term : null;
        }
        if (PendingSnapshot is { } s) return index == s.Index ? s.Term : null;
        if (index + 1 < _storage.FirstIndex || index > _storage.LastIndex) return null;
        return _storage.Term(index);
    }

    /// <summary>Term of the entry, which must exist (or be the entry just before the first).</summary>
    public ulong Term(ulong index) =>
        TryTerm(index) ?? throw new InvalidOperationException($"term of index {index} is not available (log [{FirstIndex}, {LastIndex}])");

    public bool MatchTerm(ulong index, ulong term) => TryTerm(index) == term;

    /// <summary>Raft §5.4.1: a candidate's log is at least as up-to-date as ours.</summary>
    public bool IsUpToDate(ulong lastIndex, ulong lastTerm) =>
        lastTerm > LastTerm || (lastTerm == LastTerm && lastIndex >= LastIndex);

    /// <summary>Appends entries at the tail, replacing any suffix they overlap. Never touches committed entries.</summary>
    public void Append(ReadOnlySpan<Entry> entries)
    {
        if (entries.IsEmpty) return;
        var after = entries[0].Index;
        if (after <= Committed)
            throw new InvalidOperationException($"attempt to overwrite committed index {after} (committed {Committed})");
        if (after > LastIndex + 1)
            throw new InvalidOperationException($"gap in log: appending {after} after {LastIndex}");
        if (after <= DurableIndex) DurableIndex = after - 1;
        var end = _unstableOffset + (ulong)_unstable.Count;
        if (after == end)
        {
            // Plain append.
        }
        else if (after <= _unstableOffset)
        {
            // Replaces the unstable tail entirely and overwrites storage from 'after' on when persisted.
            _unstable.Clear();
            _unstableOffset = after;
            _inProgress = 0;
        }
        else
        {
            var keep = (int)(after - _unstableOffset);
            _unstable.RemoveRange(keep, _unstable.Count - keep);
            _inProgress = Math.Min(_inProgress, keep);
        }
        foreach (var e in entries) _unstable.Add(e);
    }

    /// <summary>
    /// The follower's side of AppendEntries (Figure 2, receiver step 3): the position in <paramref name="entries"/> of
    /// the first entry this log does not already hold with the same term (-1 if it holds them all). Entries before it
    /// are kept, so a delayed or duplicated Append never truncates entries that a newer one appended.
    /// </summary>
    public int FindConflict(ReadOnlySpan<Entry> entries)
    {
        for (var i = 0; i < entries.Length; i++)
        {
            var e = entries[i];
            if (TryTerm(e.Index) != e.Term)
            {
                if (e.Index <= Committed)
                    throw new InvalidOperationException($"conflict at committed index {e.Index} (committed {Committed}): log matching violated");
                return i;
            }
        }
        return -1;
    }

    /// <summary>
    /// Fast backtracking: the largest index at or below <paramref name="index"/> whose term is at most
    /// <paramref name="term"/> (every entry above it conflicts with a log whose entry at index has that term).
    /// </summary>
    public ulong FindConflictByTerm(ulong index, ulong term)
    {
        index = Math.Min(index, LastIndex);
        while (index > 0)
        {
            var t = TryTerm(index);
            if (t is null || t <= term) break;
            index--;
        }
        return index;
    }

    public void CommitTo(ulong index)
    {
        if (index <= Committed) return;
        if (index > LastIndex) throw new InvalidOperationException($"commit {index} beyond last index {LastIndex}");
        Committed = index;
    }

    /// <summary>Entries in [lo, hi), at most <paramref name="maxBytes"/> (at least one); null if lo is compacted.</summary>
    public Entry[]? Slice(ulong lo, ulong hi, long maxBytes)
    {
        if (lo >= hi) return [];
        if (lo < FirstIndex) return null;
        if (hi > LastIndex + 1) throw new InvalidOperationException($"slice [{lo}, {hi}) beyond last index {LastIndex}");
        // Messages keep their entries, so they get an exact-size array; the scratch list is reused between calls.
        _scratch.Clear();
        AppendSlice(lo, hi, maxBytes, _scratch);
        return _scratch.ToArray();
    }

    /// <summary>Copies entries in [lo, hi) into <paramref name="into"/>, bounded by bytes (at least one).</summary>
    public void AppendSlice(ulong lo, ulong hi, long maxBytes, List<Entry> into)
    {
        var start = into.Count;
        long size = 0;
        if (lo < _unstableOffset && PendingSnapshot is null)
        {
            var storageHi = Math.Min(hi, _unstableOffset);
            _storage.GetEntries(lo, storageHi, maxBytes, into);
            for (var i = start; i < into.Count; i++) size += into[i].Size;
            if (into.Count - start < (int)(storageHi - lo)) return; // byte budget reached inside storage
            lo = storageHi;
        }
        var span = CollectionsMarshal.AsSpan(_unstable);
        for (var idx = lo; idx < hi; idx++)
        {
            var e = span[(int)(idx - _unstableOffset)];
            size += e.Size;
            if (size > maxBytes && into.Count > start) return;
            into.Add(e);
        }
    }

    /// <summary>Installs a snapshot received from the leader: the whole log is replaced by it.</summary>
    public void Restore(SnapshotMetadata snapshot)
    {
        _unstable.Clear();
        _inProgress = 0;
        _unstableOffset = snapshot.Index + 1;
        DurableIndex = Math.Min(DurableIndex, snapshot.Index);
        PendingSnapshot = snapshot;
        Committed = snapshot.Index;
    }

    /// <summary>Entries the next Ready must persist (copied into <paramref name="into"/>), marked as in progress.</summary>
    public void TakeUnstable(List<Entry> into)
    {
        into.AddRange(CollectionsMarshal.AsSpan(_unstable));
        _inProgress = _unstable.Count;
    }

    public bool HasUnstable => _unstable.Count > 0;

    /// <summary>Committed entries not yet handed out.</summary>
    public bool HasNextCommitted => Committed > ApplyFrom - 1;

    private ulong ApplyFrom => (PendingSnapshot is { } s ? Math.Max(Applied, s.Index) : Applied) + 1;

    public void TakeCommitted(long maxBytes, List<Entry> into)
    {
        if (!HasNextCommitted) return;
        AppendSlice(ApplyFrom, Committed + 1, maxBytes, into);
    }

    /// <summary>The runtime has made the Ready durable and applied what it handed out.</summary>
    public void Advance(bool snapshotInstalled, ulong lastApplied)
    {
        if (snapshotInstalled && PendingSnapshot is { } s)
        {
            Applied = Math.Max(Applied, s.Index);
            PendingSnapshot = null;
        }
        if (_inProgress > 0)
        {
            _unstableOffset += (ulong)_inProgress;
            _unstable.RemoveRange(0, _inProgress);
            _inProgress = 0;
        }
        if (lastApplied > Applied) Applied = lastApplied;
    }
}
