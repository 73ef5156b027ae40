using Microsoft.Extensions.Logging;
using RaftKv.Node.StateMachine;
using RaftKv.Raft;

namespace RaftKv.Node.Runtime;

// Local snapshots: taken by count of applied entries (SnapshotThreshold), by time (SnapshotInterval) or on request.
// By count, a snapshot also waits until the entries since the last one number at least half the keys held: a snapshot
// writes every key, so with a fixed threshold its cost per write would grow with the data (at 300,000 keys, 8192
// entries apart, each write would pay for writing 37 keys); this way it stays under two keys per write, and the log
// kept is at most comparable to the map in size.
// The map is copied on the loop (a memory copy), written to disk on a worker thread while writes go on, and only
// then recorded and the log compacted, keeping TrailingLogs entries for followers that lag a little.
internal sealed partial class RaftLoop
{
    /// <summary>
    /// How long automatic snapshots pause after one fails (a full disk, a deleted directory). Without the pause the
    /// count check would start another one after every write, each failing the same way and logging an error.
    /// </summary>
    internal static readonly TimeSpan SnapshotRetryDelay = TimeSpan.FromSeconds(10);

    private readonly List<TaskCompletionSource<ulong>> _snapshotWaiters = [];
    // Environment.TickCount64 before which automatic snapshots wait (a monotonic clock: a wall clock stepped back by
    // NTP would stretch the pause).
    private long _snapshotRetryAt;

    private void MaybeStartSnapshot(bool byInterval, TaskCompletionSource<ulong>? manual = null)
    {
        if (manual is not null) _snapshotWaiters.Add(manual);
        if (_snapshotInProgress) return;
        // A snapshot asked for by an operator is tried at once; automatic ones wait out the pause after a failure.
        if (_snapshotWaiters.Count == 0 && Environment.TickCount64 < _snapshotRetryAt) return;
        var applied = _state.AppliedIndex;
        var last = _storage.Snapshot.Index;
        bool due;
        if (_snapshotWaiters.Count > 0) due = applied > last;
        else if (byInterval)
        {
            if (DateTime.UtcNow < _nextSnapshotCheck) return;
            _nextSnapshotCheck = DateTime.UtcNow + _options.SnapshotInterval;
            due = applied > last;
        }
        else due = applied >= last + Math.Max((ulong)_options.SnapshotThreshold, (ulong)_state.Count / 2);
        if (!due)
        {
            CompleteSnapshotWaiters(last, null);
            return;
        }
        var meta = _core.SnapshotMetadataAt(applied);
        var pairs = _state.Export();
        _snapshotInProgress = true;
        Task.Run(() =>
        {
            using var writer = _snapshots.Create(meta);
            KvStateMachine.WriteSnapshot(pairs, writer.Stream);
            writer.Commit();
        }).ContinueWith(t =>
        {
            try
            {
                Post(() => FinishSnapshot(meta, t.Exception?.GetBaseException()));
            }
            catch (NodeException)
            {
                // Shutting down: the snapshot file is complete but unrecorded; the next start finds it.
            }
        }, TaskScheduler.Default);
    }

    private void FinishSnapshot(SnapshotMetadata meta, Exception? error)
    {
        _snapshotInProgress = false;
        if (error is not null)
        {
            _snapshotRetryAt = Environment.TickCount64 + (long)SnapshotRetryDelay.TotalMilliseconds;
            _log.LogError(error, "writing snapshot {Index} failed; automatic snapshots pause for {Seconds:0} s", meta.Index, SnapshotRetryDelay.TotalSeconds);
            CompleteSnapshotWaiters(0, new NodeException(NodeErrorKind.Unavailable, "writing the snapshot failed: " + error.Message));
            return;
        }
        // Whatever made the last one fail is over (an operator's snapshot may have succeeded during the pause).
        _snapshotRetryAt = 0;
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

    /// <summary>
    /// Hands an InstallSnapshot to the transport, which streams the file (one transfer per peer at a time) and reports
    /// the outcome; the core waits for that report rather than restarting a long transfer after an election timeout.
    /// </summary>
    private void SendSnapshot(Message m)
    {
        var info = _snapshots.Find(m.Snapshot!.Index);
        if (info is null)
        {
            _log.LogWarning("snapshot {Index} for {Peer} is gone; the leader will pick a newer one", m.Snapshot.Index, m.To);
            _failedSnapshots.Add(m.To);
            return;
        }
        _transport.SendSnapshot(m, info, ok =>
        {
            try
            {
                Post(() => _core.ReportSnapshot(m.To, ok));
            }
            catch (NodeException)
            {
                // Shutting down: nobody is waiting for the outcome.
            }
        });
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
