using Microsoft.Extensions.Logging;
using RaftKv.Raft;

namespace RaftKv.Node.Runtime;

// Local snapshots: taken by count of applied entries (SnapshotThreshold), by time (SnapshotInterval) or on request.
// By count, a snapshot also waits until the entries since the last one number at least half the keys held: a snapshot
// writes every key, so with a fixed threshold its cost per write would grow with the data (at 300,000 keys, 8192
// entries apart, each write would pay for writing 37 keys); this way it stays under two keys per write, and the log
// kept is at most comparable to the map in size.
// The state is copied on the loop (a memory copy), written out off the loop (ISnapshotFiles) while writes go on, and
// only then recorded and the log compacted, keeping TrailingLogs entries for followers that lag a little.
internal sealed partial class ReadyProcessor
{
    private readonly List<TaskCompletionSource<ulong>> _snapshotWaiters = [];
    private bool _snapshotInProgress;
    // TimeProvider timestamps: when the next snapshot by time is due, and before which automatic snapshots wait after
    // one failed (a monotonic clock: a wall clock stepped back would stretch the pause).
    private long _nextSnapshotCheck = long.MaxValue;
    private long _snapshotRetryAt = long.MinValue;

    /// <summary>Takes a snapshot now (if anything was applied since the last one); <paramref name="completion"/> ends with the snapshot's index.</summary>
    public void TakeSnapshotNow(TaskCompletionSource<ulong> completion) => MaybeStartSnapshot(byInterval: false, completion);

    private void MaybeStartSnapshot(bool byInterval, TaskCompletionSource<ulong>? manual = null)
    {
        if (manual is not null) _snapshotWaiters.Add(manual);
        if (_snapshotInProgress) return;
        var now = _time.GetTimestamp();
        // A snapshot asked for by an operator is tried at once; automatic ones wait out the pause after a failure.
        if (_snapshotWaiters.Count == 0 && now < _snapshotRetryAt) return;
        var applied = _state.AppliedIndex;
        var last = _storage.Snapshot.Index;
        bool due;
        if (_snapshotWaiters.Count > 0) due = applied > last;
        else if (byInterval)
        {
            if (now < _nextSnapshotCheck) return;
            _nextSnapshotCheck = After(now, _options.SnapshotInterval);
            due = applied > last;
        }
        else due = applied >= last + Math.Max((ulong)_options.SnapshotThreshold, (ulong)_state.Count / 2);
        if (!due)
        {
            CompleteSnapshotWaiters(last, null);
            return;
        }
        var meta = _core.SnapshotMetadataAt(applied);
        var view = _state.TakeSnapshot();
        _snapshotInProgress = true;
        _snapshots.StartWrite(meta, view);
    }

    /// <summary>Snapshot <paramref name="meta"/> was written (or failed with <paramref name="error"/>): record it and compact the log.</summary>
    public void SnapshotWritten(SnapshotMetadata meta, Exception? error)
    {
        _snapshotInProgress = false;
        if (error is not null)
        {
            _snapshotRetryAt = After(_time.GetTimestamp(), _options.SnapshotRetryDelay);
            _log.LogError(error, "writing snapshot {Index} failed; automatic snapshots pause for {Seconds:0} s", meta.Index, _options.SnapshotRetryDelay.TotalSeconds);
            CompleteSnapshotWaiters(0, new NodeException(NodeErrorKind.Unavailable, "writing the snapshot failed: " + error.Message));
            return;
        }
        // Whatever made the last one fail is over (an operator's snapshot may have succeeded during the pause).
        _snapshotRetryAt = long.MinValue;
        // Received snapshots up to what is applied will never be installed: pruning may take them.
        _snapshots.ReleaseReceived(_state.AppliedIndex);
        // A snapshot from the leader may have replaced the log meanwhile; then this one is already stale.
        if (meta.Index > _storage.Snapshot.Index && meta.Index <= _storage.LastIndex && meta.Index >= _storage.FirstIndex - 1)
        {
            // The compaction's record must be durable before the segments it obsoletes go, and inline after the
            // background syncs.
            DrainSyncs(report: true);
            _storage.SetSnapshot(meta);
            var compactTo = meta.Index > (ulong)_options.TrailingLogs ? meta.Index - (ulong)_options.TrailingLogs : 0;
            if (compactTo >= _storage.FirstIndex) _storage.Compact(compactTo);
            _storage.Sync();
            _core.SnapshotTaken(meta);
            _log.LogInformation("snapshot {Index} (term {Term}) taken; log starts at {First}", meta.Index, meta.Term, _storage.FirstIndex);
        }
        CompleteSnapshotWaiters(Math.Max(meta.Index, _storage.Snapshot.Index), null);
        // More may have been applied meanwhile.
        MaybeStartSnapshot(byInterval: false);
    }

    private void CompleteSnapshotWaiters(ulong index, Exception? error)
    {
        foreach (var w in _snapshotWaiters)
        {
            if (error is null) w.TrySetResult(index);
            else w.TrySetException(error);
        }
        _snapshotWaiters.Clear();
    }
}
