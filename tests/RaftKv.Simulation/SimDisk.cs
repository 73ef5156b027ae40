using RaftKv.Raft;

namespace RaftKv.Simulation;

/// <summary>How a simulated disk keeps what it is given.</summary>
internal enum DiskModel
{
    /// <summary>In memory, synced inline: a crash loses a hard state written without a sync (only a new commit index).</summary>
    Inline,

    /// <summary>In memory, synced in the background as raftkvd's WAL is: a crash keeps what the last completed sync covered, or, torn, what a sync still in flight had reached.</summary>
    Background,

    /// <summary>A real log on files (synced inline); the cluster's hooks crash and reopen it.</summary>
    Real,
}

/// <summary>
/// One background sync of a <see cref="SimDisk"/>: the image of the log when it began, which becomes what survives a
/// crash once the sync completes.
/// </summary>
internal sealed class SimSync(MemoryStorage image) : IBackgroundSync
{
    public MemoryStorage Image { get; } = image;

    public bool Flushed { get; private set; }

    public void Flush() => Flushed = true;

    public void CoveredBy(IBackgroundSync newer)
    {
        if (newer is not SimSync { Flushed: true }) throw new InvalidOperationException("covered by a sync that was not flushed");
        Flushed = true;
    }
}

/// <summary>
/// A node's log storage as the simulator gives it to the ReadyProcessor: a log (in memory, or real files) with the
/// durability of its <see cref="DiskModel"/>, faults on demand (a crash at the next sync, failing syncs), and the
/// storage checks (every append and hard state is shown to the <see cref="LogChecker"/>). It also enforces the
/// contract the runtime must keep: no inline sync while background syncs are in flight, and syncs completed in order
/// once flushed.
/// </summary>
internal sealed class SimDisk : IRaftLogStorage
{
    private readonly Random _rng;
    private readonly Queue<SimSync> _begun = new();
    private MemoryStorage? _synced;
    private HardState _syncedHardState;

    public SimDisk(string nodeId, DiskModel model, IRaftLogStorage log, Random rng, LogChecker checker)
    {
        NodeId = nodeId;
        Model = model;
        Log = log;
        _rng = rng;
        Checker = checker;
        if (model == DiskModel.Background) _synced = ((MemoryStorage)log).Clone();
        _syncedHardState = log.HardState;
        DurableCommit = log.HardState.Commit;
        RecomputeConfigEntries();
    }

    public string NodeId { get; }

    public DiskModel Model { get; }

    /// <summary>What reads see and writes go to.</summary>
    public IRaftLogStorage Log { get; private set; }

    public LogChecker Checker { get; }

    /// <summary>The highest commit index made durable (it may never go back, across crashes too).</summary>
    public ulong DurableCommit { get; private set; }

    /// <summary>Indexes of configuration entries in the log (kept by the simulator, independently of the core).</summary>
    public SortedSet<ulong> ConfigEntryIndexes { get; } = [];

    /// <summary>
    /// When set, the next sync (inline or begun in the background) throws <see cref="SimulatedCrash"/>: the process
    /// dies after writing a Ready and before it is durable.
    /// </summary>
    public bool CrashAtNextSync { get; set; }

    /// <summary>Chance that a flush fails (0 once the faults stop).</summary>
    public double SyncFailureRate { get; set; }

    /// <summary>Snapshots received from a leader and installed over the log.</summary>
    public long SnapshotsInstalled { get; private set; }

    /// <summary>Background syncs begun and not completed.</summary>
    public int SyncsInFlight => _begun.Count;

    public HardState HardState => Log.HardState;
    public SnapshotMetadata Snapshot => Log.Snapshot;
    public ulong FirstIndex => Log.FirstIndex;
    public ulong LastIndex => Log.LastIndex;
    public ulong Term(ulong index) => Log.Term(index);
    public void GetEntries(ulong lo, ulong hi, long maxBytes, List<Entry> into) => Log.GetEntries(lo, hi, maxBytes, into);

    public void Append(ReadOnlySpan<Entry> entries)
    {
        KeepEarlierHardStates();
        if (entries.IsEmpty) return;
        var first = entries[0].Index;
        ConfigEntryIndexes.RemoveWhere(i => i >= first);
        Log.Append(entries);
        foreach (var e in entries)
        {
            if (e.Type == EntryType.Configuration) ConfigEntryIndexes.Add(e.Index);
            Checker.OnAppended(this, e);
        }
    }

    public void SetHardState(HardState state)
    {
        if (state.Commit < DurableCommit) Checker.Fail($"{NodeId} durable commit went back from {DurableCommit} to {state.Commit}");
        Log.SetHardState(state);
        Checker.OnCommitted(this, state.Commit);
    }

    public void InstallSnapshot(SnapshotMetadata snapshot)
    {
        KeepEarlierHardStates();
        Log.InstallSnapshot(snapshot);
        ConfigEntryIndexes.Clear();
        SnapshotsInstalled++;
    }

    public void SetSnapshot(SnapshotMetadata snapshot)
    {
        KeepEarlierHardStates();
        Log.SetSnapshot(snapshot);
    }

    public void Compact(ulong index)
    {
        KeepEarlierHardStates();
        Log.Compact(index);
        ConfigEntryIndexes.RemoveWhere(i => i <= index);
    }

    public void Sync()
    {
        if (_begun.Count > 0) throw new InvalidOperationException($"{NodeId}: an inline sync while {_begun.Count} background syncs are in flight");
        MaybeCrash();
        MaybeFailSync();
        Log.Sync();
        if (Model == DiskModel.Background) _synced = ((MemoryStorage)Log).Clone();
        _syncedHardState = Log.HardState;
        Durable(Log.HardState.Commit);
    }

    public bool SyncsInBackground => Model == DiskModel.Background;

    public IBackgroundSync BeginSync()
    {
        if (Model != DiskModel.Background) throw new NotSupportedException("this simulated disk syncs inline");
        MaybeCrash();
        var sync = new SimSync(((MemoryStorage)Log).Clone());
        _begun.Enqueue(sync);
        return sync;
    }

    public void CompleteSync(IBackgroundSync sync)
    {
        if (!_begun.TryPeek(out var oldest) || !ReferenceEquals(oldest, sync))
            throw new InvalidOperationException($"{NodeId}: a background sync completed out of order");
        if (!oldest.Flushed) throw new InvalidOperationException($"{NodeId}: a background sync completed before it was flushed");
        _begun.Dequeue();
        _synced = oldest.Image;
        Durable(oldest.Image.HardState.Commit);
    }

    public void FailSync(Exception error) { }

    // A killed process keeps what was handed to the OS; the in-memory models keep the harder case, where a power
    // loss takes a hard state that only moved the commit index.
    public void FlushToOs()
    {
        if (Model == DiskModel.Real) Log.FlushToOs();
    }

    /// <summary>Whether the next flush fails (drawn once per flush).</summary>
    public bool NextFlushFails() => SyncFailureRate > 0 && _rng.NextDouble() < SyncFailureRate;

    /// <summary>
    /// The process died: keep what survives. Background: what the last completed sync covered or, when
    /// <paramref name="torn"/>, what a sync still in flight had reached (a prefix of the writes). Inline: a hard state
    /// written without a sync is lost. Real: <paramref name="reopen"/> crashes and reopens the files.
    /// </summary>
    /// <returns>True when a torn write survived.</returns>
    public bool Crash(bool torn, Func<IRaftLogStorage>? reopen)
    {
        CrashAtNextSync = false;
        var kept = false;
        switch (Model)
        {
            case DiskModel.Background:
                var images = new List<MemoryStorage> { _synced! };
                images.AddRange(_begun.Select(s => s.Image));
                var pick = torn && images.Count > 1 ? 1 + _rng.Next(images.Count - 1) : 0;
                kept = pick > 0;
                _synced = images[pick];
                Log = _synced.Clone();
                _begun.Clear();
                break;
            case DiskModel.Inline:
                Log.SetHardState(_syncedHardState);
                break;
            default:
                Log = reopen!();
                break;
        }
        _syncedHardState = Log.HardState;
        if (Log.HardState.Commit < DurableCommit) Checker.Fail($"{NodeId} restarted with commit {Log.HardState.Commit} below the durable {DurableCommit}");
        Durable(Log.HardState.Commit);
        RecomputeConfigEntries();
        return kept;
    }

    private void Durable(ulong commit)
    {
        if (commit < DurableCommit) Checker.Fail($"{NodeId} durable commit went back from {DurableCommit} to {commit}");
        DurableCommit = commit;
    }

    // Inline: the log is kept whole by a crash, so a hard state written before something the crash keeps is kept too
    // (a log is written in order); only the hard states written since the last write of anything else can be lost.
    private void KeepEarlierHardStates()
    {
        if (Model == DiskModel.Inline) _syncedHardState = Log.HardState;
    }

    private void MaybeCrash()
    {
        if (!CrashAtNextSync) return;
        CrashAtNextSync = false;
        throw new SimulatedCrash();
    }

    private void MaybeFailSync()
    {
        if (Model != DiskModel.Real && NextFlushFails()) throw new SimulatedDiskFailure();
    }

    private void RecomputeConfigEntries()
    {
        ConfigEntryIndexes.Clear();
        var buffer = new List<Entry>();
        for (var from = Log.FirstIndex; from <= Log.LastIndex; from += (ulong)buffer.Count)
        {
            buffer.Clear();
            Log.GetEntries(from, Log.LastIndex + 1, long.MaxValue, buffer);
            foreach (var e in buffer)
            {
                if (e.Type == EntryType.Configuration) ConfigEntryIndexes.Add(e.Index);
            }
        }
    }

    public void Dispose() => Log.Dispose();
}
