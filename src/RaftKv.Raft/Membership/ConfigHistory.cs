namespace RaftKv.Raft;

/// <summary>
/// The configurations a log holds: the one as of its snapshot (or compaction point), and every configuration entry
/// after it, in log order. A node uses the newest, committed or not (thesis §4.1), so truncating the log must bring
/// back the one before; snapshots need the one in force at their index.
/// </summary>
internal sealed class ConfigHistory
{
    private readonly List<(ulong Index, ClusterConfig Config)> _entries = [];
    private ClusterConfig _base = ClusterConfig.Empty;

    /// <summary>Index of the snapshot (or compaction point) that <see cref="At"/> falls back to.</summary>
    public ulong BaseIndex { get; private set; }

    /// <summary>The newest configuration.</summary>
    public ClusterConfig Newest => _entries.Count > 0 ? _entries[^1].Config : _base;

    /// <summary>Index of the entry that carries <see cref="Newest"/> (or of the snapshot it came from).</summary>
    public ulong NewestIndex => _entries.Count > 0 ? _entries[^1].Index : BaseIndex;

    /// <summary>Reads the configurations of a log from its storage (the node starting).</summary>
    public void Load(IRaftLogStorage storage)
    {
        Restore(storage.Snapshot.Config, storage.Snapshot.Index);
        var from = Math.Max(storage.FirstIndex, storage.Snapshot.Index + 1);
        var buffer = new List<Entry>();
        while (from <= storage.LastIndex)
        {
            buffer.Clear();
            storage.GetEntries(from, storage.LastIndex + 1, 16 << 20, buffer);
            foreach (var e in buffer)
            {
                if (e.Type == EntryType.Configuration) Add(e.Index, ClusterConfig.Decode(e.Data.Span));
            }
            from += (ulong)buffer.Count;
        }
    }

    /// <summary>The log was replaced by a snapshot: its configuration is the only one left.</summary>
    public void Restore(ClusterConfig config, ulong index)
    {
        _base = config;
        BaseIndex = index;
        _entries.Clear();
    }

    /// <summary>A configuration entry appended at <paramref name="index"/> (after every one recorded).</summary>
    public void Add(ulong index, ClusterConfig config) => _entries.Add((index, config));

    /// <summary>Entries from <paramref name="index"/> on are being replaced: forgets their configurations; true if there were any.</summary>
    public bool TruncateFrom(ulong index)
    {
        var removed = false;
        while (_entries.Count > 0 && _entries[^1].Index >= index)
        {
            _entries.RemoveAt(_entries.Count - 1);
            removed = true;
        }
        return removed;
    }

    /// <summary>The configuration in force as of <paramref name="index"/>.</summary>
    public ClusterConfig At(ulong index)
    {
        for (var i = _entries.Count - 1; i >= 0; i--)
        {
            if (_entries[i].Index <= index) return _entries[i].Config;
        }
        return _base;
    }

    /// <summary>A snapshot now covers the log up to <paramref name="index"/>: what it covers folds into the base.</summary>
    public void Compact(ulong index)
    {
        if (index <= BaseIndex) return;
        _base = At(index);
        BaseIndex = index;
        var keep = 0;
        while (keep < _entries.Count && _entries[keep].Index <= index) keep++;
        _entries.RemoveRange(0, keep);
    }
}
