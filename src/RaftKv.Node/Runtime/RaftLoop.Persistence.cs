using System.Diagnostics;
using Microsoft.Extensions.Logging;
using RaftKv.Raft;
using RaftKv.Storage;

namespace RaftKv.Node.Runtime;

// Syncing the WAL off the loop thread (RaftOptions.AsyncStorageSync). A turn writes its Ready to the WAL, hands the
// fdatasync to the BackgroundSyncer and goes on: the leader keeps taking proposals and counting acknowledgements
// while its own disk flushes (two followers' durable copies commit an entry without it). What must wait for the
// flush waits here: the Ready's messages (a follower's acknowledgements and every other reply) and the core's count
// of the leader's own log. A Ready that changes the term or vote or installs a snapshot is synced inline, as before.
internal sealed partial class RaftLoop
{
    private sealed record InFlightSync(long Seq, BackgroundSync Sync, bool HasEntries, long Started)
    {
        /// <summary>Messages that leave once the flush is done.</summary>
        public List<Message>? Messages { get; set; }

        /// <summary>Last index written when the sync began, capped at the first entry replaced since.</summary>
        public ulong Index { get; set; }
    }

    private readonly BackgroundSyncer? _syncer;
    private readonly Queue<InFlightSync> _inFlight = new();
    private InFlightSync? _lastEnqueued; // the queue's last element whenever it is not empty (a Queue has no cheap Last)
    private long _nextSyncSeq = 1;
    private int _entrySyncsInFlight;
    // HoldProposals as last set by the loop, for the threads that post proposals: while it is true a new proposal does
    // not wake the loop, which could do nothing with it but go back to sleep.
    private volatile bool _proposalsHeld;

    /// <summary>
    /// New proposals wait while the leader's last entries are flushing: they gather into one batch (one write, one
    /// Append per follower, one flush), as they did while an inline flush blocked the loop, while acknowledgements
    /// and reads are still handled at once.
    /// </summary>
    private bool HoldProposals => _entrySyncsInFlight > 0;

    private void EntrySyncsChanged(int by)
    {
        _entrySyncsInFlight += by;
        _proposalsHeld = _entrySyncsInFlight > 0;
        // The held proposals' Appends will carry the commit index: no need to send it alone meanwhile.
        _core.DeferCommitOnlyAppends = _proposalsHeld;
        // Pairs with the barrier in PostProposal: either the poster sees the hold lifted and wakes the loop, or the loop,
        // checking the queue after this, sees the proposal (RaftLoop.Run checks before it waits).
        Interlocked.MemoryBarrier();
    }

    private FileLogStorage Wal => (FileLogStorage)_storage;

    /// <summary>
    /// Only a leader syncs in the background, and not a Ready that changes the term or vote or installs a snapshot.
    /// A follower gains nothing from it (what arrives during its flush is batched into the next one either way) and
    /// would pay two more thread hops before each acknowledgement.
    /// </summary>
    private bool MustSyncInline(Ready rd)
    {
        if (_syncer is null || rd.Snapshot is not null || _core.Role != Role.Leader) return true;
        if (rd.HardState is not { } hs) return false;
        var stored = _storage.HardState;
        return hs.Term != stored.Term || hs.VotedFor != stored.VotedFor;
    }

    /// <summary>Called after a Ready's writes: syncs in the background, and holds its messages until that is done.</summary>
    private void SyncInBackground(Ready rd)
    {
        if (!rd.MustSync)
        {
            // Nothing to flush (at most a new commit index, which a later flush covers). Its messages leave with the
            // newest flush in progress, which they may depend on, or at once when there is none; either way this
            // costs no fdatasync of its own.
            if (_inFlight.Count > 0 && rd.Messages.Count > 0) (_lastEnqueued!.Messages ??= []).AddRange(rd.Messages);
            else foreach (var m in rd.Messages) Dispatch(m);
            return;
        }
        var sync = Wal.BeginSync();
        var seq = _nextSyncSeq++;
        _lastEnqueued = new InFlightSync(seq, sync, rd.Entries.Count > 0, Stopwatch.GetTimestamp())
        {
            Index = _storage.LastIndex,
            Messages = rd.Messages.Count > 0 ? [.. rd.Messages] : null,
        };
        _inFlight.Enqueue(_lastEnqueued);
        if (rd.Entries.Count > 0) EntrySyncsChanged(+1);
        _syncer!.Request(sync, seq);
    }

    /// <summary>Entries from <paramref name="first"/> on are being replaced: syncs in flight do not make the new ones durable.</summary>
    private void CapInFlightSyncs(ulong first)
    {
        foreach (var s in _inFlight) s.Index = Math.Min(s.Index, first - 1);
    }

    // Runs on the syncer's thread.
    private void OnSynced(long seq, BackgroundSync sync)
    {
        if (_stopping) return;
        try
        {
            Post(() => CompleteSyncs(seq, sync, report: true));
        }
        catch (NodeException)
        {
            // Stopping: nothing waits for it any more.
        }
    }

    private void OnSyncFailed(Exception e)
    {
        Wal.FailSync(e);
        if (_stopping) return;
        try
        {
            Post(() => throw new IOException("syncing the WAL failed: " + e.Message, e));
        }
        catch (NodeException)
        {
        }
    }

    /// <summary>
    /// The syncs up to <paramref name="seq"/> are durable (<paramref name="flushed"/> was flushed and covers the older
    /// ones): send the messages that waited for them and, unless inside a Ready, tell the core how far its log is durable.
    /// </summary>
    private void CompleteSyncs(long seq, BackgroundSync flushed, bool report)
    {
        ulong durable = 0;
        var any = false;
        while (_inFlight.TryPeek(out var s) && s.Seq <= seq)
        {
            _inFlight.Dequeue();
            if (s.HasEntries) EntrySyncsChanged(-1);
            if (!ReferenceEquals(s.Sync, flushed)) s.Sync.CoveredBy(flushed);
            Wal.CompleteSync(s.Sync);
            if (s.Messages is not null)
            {
                foreach (var m in s.Messages) Dispatch(m);
            }
            durable = Math.Max(durable, s.Index);
            any = true;
        }
        if (any && report) _core.ReportDurable(durable);
        // Peers found unreachable while sending are reported to the core when it can take input.
        if (report) ReportUnreachablePeers();
    }

    /// <summary>
    /// Called every tick: a flush that has taken longer than an election timeout (a hung or failing disk) makes the
    /// loop wait for it, as an inline fsync would. Heartbeats stop, so the followers elect a leader whose disk works,
    /// instead of this one leading on while every write waits behind the stuck flush.
    /// </summary>
    private void WaitForStuckSync()
    {
        if (!_inFlight.TryPeek(out var oldest) || Stopwatch.GetElapsedTime(oldest.Started) < _options.ElectionTimeout) return;
        _log.LogWarning("a WAL flush has taken {Ms:0} ms; the raft loop waits for it", Stopwatch.GetElapsedTime(oldest.Started).TotalMilliseconds);
        DrainSyncs(report: true);
    }

    /// <summary>Blocks until every sync in flight is done (before an inline sync, which must come after them).</summary>
    private void DrainSyncs(bool report)
    {
        if (_inFlight.Count == 0) return;
        var newest = _lastEnqueued!;
        _syncer!.WaitFor(newest.Seq);
        CompleteSyncs(newest.Seq, newest.Sync, report);
    }
}
