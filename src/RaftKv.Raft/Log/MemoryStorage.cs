namespace RaftKv.Raft;

/// <summary>
/// <see cref="IRaftLogStorage"/> kept in memory: used by the tests, the simulator, the benchmarks and the server's
/// <c>-inmem</c> mode. <see cref="Sync"/> does nothing, so nothing here survives the process.
/// </summary>
public sealed class MemoryStorage : IRaftLogStorage
{
    // _entries[0] is a placeholder standing for the entry at FirstIndex - 1 (compacted or covered by a snapshot):
    // only its Index and Term are meaningful.
    private readonly List<Entry> _entries = [new Entry(0, 0, EntryType.Normal, default)];

    /// <inheritdoc />
    public HardState HardState { get; private set; }

    /// <inheritdoc />
    public SnapshotMetadata Snapshot { get; private set; } = SnapshotMetadata.Empty;

    private ulong Offset => _entries[0].Index;

    /// <inheritdoc />
    public ulong FirstIndex => Offset + 1;

    /// <inheritdoc />
    public ulong LastIndex => Offset + (ulong)_entries.Count - 1;

    /// <inheritdoc />
    public ulong Term(ulong index)
    {
        if (index < Offset || index > LastIndex)
            throw new ArgumentOutOfRangeException(nameof(index), $"index {index} outside [{Offset}, {LastIndex}]");
        return _entries[(int)(index - Offset)].Term;
    }

    /// <inheritdoc />
    public void GetEntries(ulong lo, ulong hi, long maxBytes, List<Entry> into)
    {
        if (lo < FirstIndex || hi > LastIndex + 1 || lo > hi)
            throw new ArgumentOutOfRangeException(nameof(lo), $"range [{lo}, {hi}) outside [{FirstIndex}, {LastIndex + 1})");
        long size = 0;
        for (var i = lo; i < hi; i++)
        {
            var e = _entries[(int)(i - Offset)];
            size += e.Size;
            if (size > maxBytes && i > lo) break;
            into.Add(e);
        }
    }

    /// <inheritdoc />
    public void Append(ReadOnlySpan<Entry> entries)
    {
        if (entries.IsEmpty) return;
        var first = entries[0].Index;
        if (first < FirstIndex || first > LastIndex + 1)
            throw new ArgumentOutOfRangeException(nameof(entries), $"append at {first} outside [{FirstIndex}, {LastIndex + 1}]");
        var keep = (int)(first - Offset);
        if (keep < _entries.Count) _entries.RemoveRange(keep, _entries.Count - keep);
        foreach (var e in entries) _entries.Add(e);
    }

    /// <inheritdoc />
    public void SetHardState(HardState state) => HardState = state;

    /// <inheritdoc />
    public void Sync() { }

    /// <inheritdoc />
    /// <remarks>Nothing to flush: the runtime syncs inline, at no cost.</remarks>
    public bool SyncsInBackground => false;

    /// <inheritdoc />
    public IBackgroundSync BeginSync() => throw new NotSupportedException("a log in memory has nothing to flush in the background");

    /// <inheritdoc />
    public void CompleteSync(IBackgroundSync sync) => throw new NotSupportedException("a log in memory has nothing to flush in the background");

    /// <inheritdoc />
    public void FailSync(Exception error) { }

    /// <inheritdoc />
    public void FlushToOs() { }

    /// <inheritdoc />
    public void InstallSnapshot(SnapshotMetadata snapshot)
    {
        _entries.Clear();
        _entries.Add(new Entry(snapshot.Index, snapshot.Term, EntryType.Normal, default));
        Snapshot = snapshot;
    }

    /// <inheritdoc />
    public void SetSnapshot(SnapshotMetadata snapshot)
    {
        if (snapshot.Index < Snapshot.Index) throw new ArgumentException($"snapshot {snapshot.Index} is older than {Snapshot.Index}", nameof(snapshot));
        Snapshot = snapshot;
    }

    /// <inheritdoc />
    public void Compact(ulong index)
    {
        if (index <= Offset) return;
        if (index > LastIndex) throw new ArgumentOutOfRangeException(nameof(index), $"compact {index} beyond last index {LastIndex}");
        if (index > Snapshot.Index) throw new ArgumentOutOfRangeException(nameof(index), $"compact {index} beyond snapshot {Snapshot.Index}");
        var n = (int)(index - Offset);
        var marker = _entries[n];
        _entries.RemoveRange(0, n);
        _entries[0] = new Entry(marker.Index, marker.Term, EntryType.Normal, default);
    }

    /// <summary>A deep copy: the simulator uses it as the node's disk surviving a crash.</summary>
    public MemoryStorage Clone()
    {
        var c = new MemoryStorage { HardState = HardState, Snapshot = Snapshot };
        c._entries.Clear();
        c._entries.AddRange(_entries);
        return c;
    }

    /// <inheritdoc />
    public void Dispose() { }
}
