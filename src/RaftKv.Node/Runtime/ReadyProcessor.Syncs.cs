using Microsoft.Extensions.Logging;
using RaftKv.Raft;

namespace RaftKv.Node.Runtime;

// Syncing the log off the loop thread (RaftOptions.AsyncStorageSync). A turn writes its Ready to the log, hands the
// flush to the ISyncFlusher and goes on: the leader keeps taking proposals and counting acknowledgements while its
// own disk flushes (two followers' durable copies commit an entry without it). What must wait for the flush waits
// here: the Ready's messages (a follower's acknowledgements and every other reply) and the core's count of the
// leader's own log. A Ready that changes the term or vote or installs a snapshot is synced inline.
internal sealed partial class ReadyProcessor
{
    private sealed record InFlightSync(long Seq, IBackgroundSync Sync, bool HasEntries, long Started)
    {
        /// <summary>Messages that leave once the flush is done.</summary>
        public List<Message>? Messages { get; set; }

        /// <summary>Last index written when the sync began, capped at the first entry replaced since.</summary>
        public ulong Index { get; set; }
    }

    private readonly Queue<InFlightSync> _inFlight = new();
    private InFlightSync? _lastEnqueued; // the queue's last element whenever it is not empty (a Queue has no cheap Last)
    private long _nextSyncSeq = 1;
    private int _entrySyncsInFlight;
    // HoldProposals as last set, for the threads that post proposals: while it is true a new proposal need not wake
    // the loop, which could do nothing with it but go back to sleep.
    private volatile bool _proposalsHeld;

    /// <summary>
    /// New proposals wait while the leader's last entries are flushing: they gather into one batch (one write, one
    /// Append per follower, one flush), as they did while an inline flush blocked the loop, while acknowledgements
    /// and reads are still handled at once. The loop does not call <see cref="Propose"/> meanwhile.
    /// </summary>
    public bool HoldProposals => _entrySyncsInFlight > 0;

    /// <summary><see cref="HoldProposals"/> for other threads (see RaftLoop.PostProposal).</summary>
    public bool ProposalsHeld => _proposalsHeld;

    /// <summary>Background syncs begun and not yet completed.</summary>
    public int SyncsInFlight => _inFlight.Count;

    private void EntrySyncsChanged(int by)
    {
        _entrySyncsInFlight += by;
        _proposalsHeld = _entrySyncsInFlight > 0;
        // The held proposals' Appends will carry the commit index: no need to send it alone meanwhile.
        _core.DeferCommitOnlyAppends = _proposalsHeld;
        // Pairs with the barrier in RaftLoop.PostProposal: either the poster sees the hold lifted and wakes the loop,
        // or the loop, checking the queue after this, sees the proposal (RaftLoop.Run checks before it waits).
        Interlocked.MemoryBarrier();
    }

    /// <summary>
    /// Only a leader syncs in the background, and not a Ready that changes the term or vote or installs a snapshot.
    /// A follower gains nothing from it (what arrives during its flush is batched into the next one either way) and
    /// would pay two more thread hops before each acknowledgement.
    /// </summary>
    private bool MustSyncInline(Ready rd)
    {
        if (_flusher is null || rd.Snapshot is not null || _core.Role != Role.Leader) return true;
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
            // costs no flush of its own.
            if (_inFlight.Count > 0 && rd.Messages.Count > 0) (_lastEnqueued!.Messages ??= []).AddRange(rd.Messages);
            else foreach (var m in rd.Messages) Dispatch(m);
            return;
        }
        var sync = _storage.BeginSync();
        var seq = _nextSyncSeq++;
        _lastEnqueued = new InFlightSync(seq, sync, rd.Entries.Count > 0, _time.GetTimestamp())
        {
            Index = _storage.LastIndex,
            Messages = rd.Messages.Count > 0 ? [.. rd.Messages] : null,
        };
        _inFlight.Enqueue(_lastEnqueued);
        if (rd.Entries.Count > 0) EntrySyncsChanged(+1);
        _flusher!.Request(sync, seq);
    }

    /// <summary>Entries from <paramref name="first"/> on are being replaced: syncs in flight do not make the new ones durable.</summary>
    private void CapInFlightSyncs(ulong first)
    {
        foreach (var s in _inFlight) s.Index = Math.Min(s.Index, first - 1);
    }

    /// <summary>
    /// The flusher reached sync <paramref name="seq"/> by flushing <paramref name="flushed"/> (which covers the older
    /// ones): send the messages that waited for them and tell the core how far its log is durable.
    /// </summary>
    public void SyncsCompleted(long seq, IBackgroundSync flushed) => CompleteSyncs(seq, flushed, report: true);

    /// <summary>A background flush failed: nothing written since the last good one is known to be durable, and the node must stop.</summary>
    /// <exception cref="IOException">Always.</exception>
    public static void SyncFailed(Exception error) => throw new IOException("syncing the WAL failed: " + error.Message, error);

    /// <summary>
    /// The syncs up to <paramref name="seq"/> are durable (<paramref name="flushed"/> was flushed and covers the older
    /// ones): send the messages that waited for them and, unless inside a Ready, tell the core how far its log is durable.
    /// </summary>
    private void CompleteSyncs(long seq, IBackgroundSync flushed, bool report)
    {
        ulong durable = 0;
        var any = false;
        while (_inFlight.TryPeek(out var s) && s.Seq <= seq)
        {
            _inFlight.Dequeue();
            if (s.HasEntries) EntrySyncsChanged(-1);
            if (!ReferenceEquals(s.Sync, flushed)) s.Sync.CoveredBy(flushed);
            _storage.CompleteSync(s.Sync);
            if (s.Messages is not null)
            {
                foreach (var m in s.Messages) Dispatch(m);
            }
            durable = Math.Max(durable, s.Index);
            any = true;
        }
        if (any && report) _core.ReportDurable(durable);
        // Peers found unreachable while sending are reported to the core when it can take input.
        if (report) ReportDeliveryFailures();
    }

    /// <summary>
    /// Called every tick: a flush that has taken longer than an election timeout (a hung or failing disk) makes the
    /// loop wait for it, as an inline fsync would. Heartbeats stop, so the followers elect a leader whose disk works,
    /// instead of this one leading on while every write waits behind the stuck flush.
    /// </summary>
    private void WaitForStuckSync()
    {
        if (!_inFlight.TryPeek(out var oldest)) return;
        var age = _time.GetElapsedTime(oldest.Started);
        if (age < _options.StuckSyncTimeout) return;
        _log.LogWarning("a WAL flush has taken {Ms:0} ms; the raft loop waits for it", age.TotalMilliseconds);
        DrainSyncs(report: true);
    }

    /// <summary>Blocks until every sync in flight is done (before an inline sync, which must come after them).</summary>
    private void DrainSyncs(bool report)
    {
        if (_inFlight.Count == 0) return;
        var newest = _lastEnqueued!;
        _flusher!.WaitFor(newest.Seq);
        CompleteSyncs(newest.Seq, newest.Sync, report);
    }
}
