using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using RaftKv.Node.Routing;
using RaftKv.Node.StateMachine;
using RaftKv.Node.Transport;
using RaftKv.Raft;
using RaftKv.Storage;
using RaftKv.Storage.Snapshots;

namespace RaftKv.Node.Runtime;

/// <summary>
/// The one thread that owns the consensus core. Each turn it ticks the core when due, runs every input queued since
/// the last turn (peer messages, proposals, reads, membership changes), then carries out the core's Ready: send the
/// leader's eager messages, persist with one sync, send the rest, apply committed entries, answer waiting requests.
/// Everything that arrived during one fsync is handled by the next turn, so a busy node batches naturally.
/// </summary>
internal sealed partial class RaftLoop : IDisposable
{
    private readonly NodeOptions _options;
    private readonly ILogger _log;
    private readonly RaftCore _core;
    private readonly IRaftLogStorage _storage;
    private readonly SnapshotStore _snapshots;
    private readonly IRaftTransport _transport;
    private readonly KvStateMachine _state;
    private readonly ConcurrentQueue<Action> _inputs = new();
    // Proposals, kept apart so a leader can hold them while its WAL flushes (see RaftLoop.Persistence.cs).
    private readonly ConcurrentQueue<QueuedProposal> _proposalInputs = new();
    // Linearizable reads, kept apart so that they need not wake the loop while a heartbeat round is answered.
    private readonly ConcurrentQueue<QueuedRead> _readInputs = new();
    // Bounds what waits in the two queues above (see RequestQueueBound).
    private readonly RequestQueueBound _queueBound;
    private volatile bool _readsHeld;
    private readonly ManualResetEventSlim _wake = new(false, spinCount: 1);
    private readonly Thread _thread;
    private readonly TimeSpan _tick;
    private readonly ProposalTracker<PendingWrite> _proposals = new();
    private readonly Dictionary<ulong, PendingRead> _reads = [];
    private readonly List<(PendingRead Read, ulong Index)> _readsWaitingForApply = [];
    private readonly List<string> _unreachable = [];
    // Peers whose snapshot could not even be started during this Ready (reported after Advance). Loop thread only.
    private readonly List<string> _failedSnapshots = [];
    private volatile bool _stopping;
    private int _wakeRequested;
    private readonly TaskCompletionSource _recovered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<string> _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ulong _nextReadId = 1;
    private ClusterConfig _peersConfig = ClusterConfig.Empty;
    private readonly ulong _incarnation;
    // Readiness: the leader's commit index as of the first Append or heartbeat this node heard after it started (null: none yet).
    private ulong? _catchUpTarget;
    // Stale-incarnation drops, logged at most once a minute per sender.
    private readonly Dictionary<string, long> _staleLogged = new(StringComparer.Ordinal);
    private long _lastLeaderContact = -1;
    private bool _snapshotInProgress;
    private DateTime _nextSnapshotCheck;

    private sealed record PendingRead(string Key, TaskCompletionSource<string?> Completion, long Deadline, CancellationToken Cancellation);

    private sealed record PendingWrite(TaskCompletionSource<ulong> Completion, ulong Index);

    public RaftLoop(NodeOptions options, ILogger logger, IRaftLogStorage storage, SnapshotStore snapshots, SnapshotInfo? restoreFrom,
        IRaftTransport transport, ulong incarnation)
    {
        _options = options;
        _incarnation = incarnation;
        _log = logger;
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxQueuedRequests, 1, nameof(options.MaxQueuedRequests));
        ArgumentOutOfRangeException.ThrowIfLessThan(options.MaxQueuedBytes, 1, nameof(options.MaxQueuedBytes));
        _queueBound = new RequestQueueBound(options.MaxQueuedRequests, options.MaxQueuedBytes);
        _storage = storage;
        _snapshots = snapshots;
        _transport = transport;
        _state = new KvStateMachine();
        if (restoreFrom is not null)
        {
            using var stream = SnapshotStore.OpenRead(restoreFrom);
            _state.Restore(stream, restoreFrom.Metadata.Index);
        }
        _tick = TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond, options.HeartbeatTimeout.Ticks / 2));
        var heartbeatTicks = Math.Max(1, (int)(options.HeartbeatTimeout.Ticks / _tick.Ticks));
        var electionTicks = Math.Max(heartbeatTicks + 1, (int)(options.ElectionTimeout.Ticks / _tick.Ticks));
        _core = new RaftCore(new RaftOptions
        {
            Id = options.Id,
            ElectionTicks = electionTicks,
            HeartbeatTicks = heartbeatTicks,
            Applied = _state.AppliedIndex,
            Incarnation = incarnation,
            // The in-memory log has nothing to flush; only the WAL syncs in the background.
            AsyncStorageSync = storage is FileLogStorage,
            // A batch of entries must fit one transport frame, or every Append carrying it is dropped for good.
            MaxSizePerMessage = EntryLimits.AppendBatchBytes(options.Transport.MaxFrameSize),
            // Every transfer ends in a report (RaftLoop.Snapshots.cs): a long one is not restarted.
            SnapshotOutcomesReported = true,
            // The core's decisions (elections, step-downs, refusals), when debug logging is on.
            Trace = logger.IsEnabled(LogLevel.Debug) ? e => logger.LogDebug("Raft core: {Event}", e) : null,
        }, storage);
        if (_core.Config.Members.Length > 0 && _core.Config.Find(options.Id) is null)
        {
            // The id defaults to the raft address, so changing -raddr alone renames a node; under the new name it is not
            // a member, never hears from a leader, and would otherwise sit there without a word.
            _log.LogWarning(
                "This node's id {Id} is not in the cluster configuration it has stored (members: {Members}). If it was removed, that is expected; if its id or raft address (the default id) changed, restart it with the old one",
                options.Id, string.Join(", ", _core.Config.Members.Select(m => m.Id)));
        }
        // Before the transport starts: its first handshakes must already say which cluster and incarnation this is.
        _transport.SetIdentity(_core.Config.ClusterId, incarnation);
        if (storage is FileLogStorage) _syncer = new BackgroundSyncer(options.Id, OnSynced, OnSyncFailed, options.WalFlushForTests);
        _nextSnapshotCheck = DateTime.UtcNow + options.SnapshotInterval;
        _thread = new Thread(Run) { IsBackground = true, Name = "raft-loop " + options.Id };
    }

    public KvStateMachine State => _state;

    /// <summary>Who leads, as of the last leadership or membership change here: read by routing without asking the loop.</summary>
    public LeaderView Leader => _leaderView;

    private volatile LeaderView _leaderView = LeaderView.Unknown;

    // Only on a leadership or membership change, so the loop's turns allocate nothing for it.
    private void PublishLeaderView() => _leaderView = LeaderView.Of(_options.Id, _core.Role == Role.Leader, _core.Leader, _core.Config);

    /// <summary>Completes once the log's committed entries are applied after a restart: until then even a level-none read would be stale.</summary>
    public Task Recovered => _recovered.Task;

    /// <summary>Completes, with a one-line reason, when the loop stops by itself after an error; never on a normal stop.</summary>
    public Task<string> Failed => _failed.Task;

    public void Start() => _thread.Start();

    /// <summary>Queues work for the loop thread.</summary>
    public void Post(Action action)
    {
        if (_stopping) throw new NodeException(NodeErrorKind.Unavailable, "the node is shutting down");
        _inputs.Enqueue(action);
        Wake();
    }

    /// <summary>Queues a proposal for the loop thread (already counted in by <see cref="_queueBound"/>).</summary>
    private void PostProposal(QueuedProposal proposal)
    {
        var completion = proposal.Completion;
        _proposalInputs.Enqueue(proposal);
        // See EntrySyncsChanged: a held proposal is taken when the flush holding it completes, which wakes the loop.
        Interlocked.MemoryBarrier();
        if (!_proposalsHeld) Wake();
        // The loop may have stopped between the check above and the enqueue, and will not drain the queue again. It may
        // also have proposed this just before stopping: the outcome is unknown, not "not applied".
        if (_stopping) completion.TrySetException(WriteOutcomeUnknown(new NodeException(NodeErrorKind.Unavailable, "the node is shutting down")));
    }

    private void Wake()
    {
        // Setting the event takes its lock; under load thousands of posts per turn would contend on it. Only the
        // first post after the loop last looked sets it.
        if (Interlocked.Exchange(ref _wakeRequested, 1) == 0) _wake.Set();
    }

    /// <summary>
    /// Runs <paramref name="f"/> on the loop thread and returns its result. Counted in the request bound like writes
    /// and reads: status probes and weak reads must not pile up behind a stalled loop either.
    /// </summary>
    public Task<T> Call<T>(Func<T> f)
    {
        if (!_queueBound.TryEnter(0)) return Task.FromException<T>(_queueBound.Full());
        var tcs = new TaskCompletionSource<T>(TaskCreationOptions.RunContinuationsAsynchronously);
        try
        {
            Post(() =>
            {
                _queueBound.Leave(0);
                try
                {
                    tcs.TrySetResult(f());
                }
                catch (Exception e)
                {
                    tcs.TrySetException(e);
                }
            });
        }
        catch (NodeException)
        {
            _queueBound.Leave(0);
            throw;
        }
        return tcs.Task;
    }

    private void Run()
    {
        t_onAnyLoop = true;
        try
        {
            UpdatePeers();
            // Recover before serving anything: apply everything the log says is committed (hraftd answers empty
            // values for seconds after a restart; requests queued meanwhile wait for this).
            while (_core.HasReady) HandleReady();
            _recovered.TrySetResult();
        }
        catch (Exception e)
        {
            _log.LogCritical(e, "recovery failed; the node stops");
            _stopping = true;
            _recovered.TrySetException(e);
            FailEverything(new NodeException(NodeErrorKind.Unavailable, "the node failed to recover: " + e.Message));
            return;
        }
        var clock = Stopwatch.StartNew();
        var nextTick = clock.Elapsed + _tick;
        while (!_stopping)
        {
            var wait = nextTick - clock.Elapsed;
            // Rounded up: the wait counts whole milliseconds, and a shorter one would return at once, so the loop
            // would spin through the last millisecond before every tick. Proposals and reads that came while they were
            // held and are free to go now did not wake the loop: take them first.
            var heldInputsReady = (!HoldProposals && !_proposalInputs.IsEmpty) || (!_readsHeld && !_readInputs.IsEmpty);
            if (wait > TimeSpan.Zero && !heldInputsReady) _wake.Wait((int)Math.Ceiling(wait.TotalMilliseconds));
            // Clear the event, then the request, then drain: a post that still finds the request set was made before
            // the request was cleared and is drained below; one that finds it clear sets the event again, after this
            // reset, so the next wait returns at once. (The other order lost wakeups: a post between clearing the
            // request and resetting the event had its Set undone, and the request it left set kept every later post
            // from setting the event, so the loop slept until its next tick.) Exchange is a full fence: the drain
            // below cannot be read ahead of it.
            _wake.Reset();
            Interlocked.Exchange(ref _wakeRequested, 0);
            try
            {
                if (clock.Elapsed >= nextTick)
                {
                    _core.Tick();
                    nextTick += _tick;
                    // After a long pause (GC, debugger), do not replay every missed tick in a burst.
                    if (nextTick < clock.Elapsed) nextTick = clock.Elapsed + _tick;
                    MaybeStartSnapshot(byInterval: true);
                    RecordIdentities();
                    ExpireReads();
                    WaitForStuckSync();
                }
                while (_inputs.TryDequeue(out var input)) input();
                // Reads are taken whenever the loop is awake; held or not only decides whether they wake it.
                while (_readInputs.TryDequeue(out var read)) StartRead(read);
                if (!HoldProposals)
                {
                    while (_proposalInputs.TryDequeue(out var proposal)) Propose(proposal);
                }
                while (_core.HasReady) HandleReady();
                HoldReadsWhileARoundIsAnswered();
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                if (_stopping) break; // shutting down released a wait on the WAL sync thread
                // A failed disk write leaves the node unable to keep its promises: stop rather than serve wrongly.
                _log.LogCritical(e, "raft loop failed; the node stops");
                _stopping = true;
                FailEverything(new NodeException(NodeErrorKind.Unavailable, "the node stopped after an internal error: " + e.Message));
                // Last, once nothing waits on the loop: a host that ends the process when this completes loses nothing.
                _failed.TrySetResult($"the raft loop failed: {e.GetType().Name}: {OneLine(e.Message)}");
                return;
            }
        }
        FailEverything(new NodeException(NodeErrorKind.Unavailable, "the node is shutting down"));
    }

    private static string OneLine(string text) => text.ReplaceLineEndings(" ");

    // Writes already proposed may still commit through the other nodes: their callers must hear "unknown", not "failed".
    private static NodeException WriteOutcomeUnknown(NodeException why) =>
        new(NodeErrorKind.Timeout, why.Message + "; a write in progress may or may not have been applied");

    private void HandleReady()
    {
        var rd = _core.GetReady();
        // The configuration changes when entries are appended, before they are even durable; the transport must know
        // a new member's address before the first message to it goes out.
        if (!ReferenceEquals(_core.Config, _peersConfig)) UpdatePeers();
        foreach (var m in rd.EagerMessages) Dispatch(m);

        var inline = MustSyncInline(rd);
        // An inline sync comes after the syncs in flight, and its messages after theirs.
        if (inline) DrainSyncs(report: false);

        // Committed entries that were already durable here before this Ready (below its first new entry) need not
        // wait for this Ready's fsync: applying them and answering their clients first takes one fsync off every
        // write's latency under load. (With background syncs nothing waits: a committed entry is durable on a
        // majority, which is what a client's acknowledgement promises.)
        var appliedEarly = 0;
        if (inline && rd.Snapshot is null)
        {
            var durable = rd.Entries.Count > 0 ? Math.Min(rd.Entries[0].Index - 1, _storage.LastIndex) : _storage.LastIndex;
            while (appliedEarly < rd.CommittedEntries.Count && rd.CommittedEntries[appliedEarly].Index <= durable)
                Apply(rd.CommittedEntries[appliedEarly++]);
            if (appliedEarly > 0) ServeReads();
        }

        if (rd.Snapshot is { } snap) _storage.InstallSnapshot(snap);
        if (rd.Entries.Count > 0)
        {
            CapInFlightSyncs(rd.Entries[0].Index);
            _storage.Append(CollectionsMarshal.AsSpan((List<Entry>)rd.Entries));
        }
        if (rd.HardState is { } hs)
        {
            _storage.SetHardState(hs);
            // A new commit index alone is not synced (Ready.MustSync), but it is handed to the OS at once: a killed
            // process then keeps it, and only a power loss can take it (the node restarts with an older commit index,
            // which is safe, and serves level-none reads from that older state until the leader tells it more).
            if (!rd.MustSync && _storage is FileLogStorage wal) wal.FlushToOs();
        }
        if (inline)
        {
            if (rd.MustSync) _storage.Sync();
            foreach (var m in rd.Messages) Dispatch(m);
        }
        else
        {
            SyncInBackground(rd);
        }

        if (rd.Snapshot is { } installed) RestoreSnapshot(installed);
        for (var i = appliedEarly; i < rd.CommittedEntries.Count; i++) Apply(rd.CommittedEntries[i]);
        foreach (var rs in rd.ReadStates)
        {
            if (_reads.Remove(rs.RequestId, out var read)) _readsWaitingForApply.Add((read, rs.Index));
        }
        foreach (var fr in rd.FailedReads)
        {
            if (_reads.Remove(fr.RequestId, out var read)) read.Completion.TrySetException(ReadFailure(fr));
        }
        if (rd.SoftState is { } ss) OnSoftState(ss);
        _core.Advance();
        // Everything written so far was synced above.
        if (inline && _syncer is not null) _core.ReportDurable(_storage.LastIndex);

        ReportUnreachablePeers();
        ServeReads();
        MaybeStartSnapshot(byInterval: false);
    }

    /// <summary>Inputs the core refuses while a Ready is outstanding, reported once it can take them.</summary>
    private void ReportUnreachablePeers()
    {
        foreach (var peer in _unreachable) _core.ReportUnreachable(peer);
        _unreachable.Clear();
        foreach (var peer in _failedSnapshots) _core.ReportSnapshotFailure(peer);
        _failedSnapshots.Clear();
    }

    private void Dispatch(Message m)
    {
        if (m.Type == MessageType.InstallSnapshot)
        {
            SendSnapshot(m);
            return;
        }
        if (!_transport.Send(m)) _unreachable.Add(m.To);
    }

    /// <summary>Called by the transport for every inbound message.</summary>
    public void Receive(Message m)
    {
        if (_stopping) return;
        // The snapshot's data must be in the store before the core hears of it: installing it reads it from there.
        if (m.Type == MessageType.InstallSnapshot && (m.Snapshot is null || _snapshots.Find(m.Snapshot.Index) is null))
        {
            _log.LogWarning("dropped {Message}: its snapshot is not in the snapshot store", m);
            return;
        }
        Post(() =>
        {
            if (_core.IsFromStaleIncarnation(m))
            {
                LogStaleIncarnation(m);
                return;
            }
            if (m.From == _core.Leader || m.Type is MessageType.Append or MessageType.Heartbeat) _lastLeaderContact = Stopwatch.GetTimestamp();
            if (m.Type == MessageType.Append) _catchUpTarget ??= m.Commit;
            else if (m.Type == MessageType.Heartbeat) _catchUpTarget ??= m.Index;
            _core.Step(m);
        });
    }

    private void Apply(Entry e)
    {
        if (e.Type == EntryType.Normal && !e.Data.IsEmpty)
            _state.Apply(e.Index, e.Data.Span, problem => _log.LogError("skipped malformed command: {Problem}", problem));
        else
            _state.Skip(e.Index);
        _proposals.OnApplied(e.Index, e.Term, ResolveProposal);
    }

    private static void ResolveProposal(PendingWrite write, ProposalOutcome outcome)
    {
        var tcs = write.Completion;
        switch (outcome)
        {
            case ProposalOutcome.Applied:
                tcs.TrySetResult(write.Index);
                break;
            case ProposalOutcome.Superseded:
                tcs.TrySetException(new NodeException(NodeErrorKind.NotApplied, "leadership changed before the write committed; it was not applied"));
                break;
            default:
                tcs.TrySetException(new NodeException(NodeErrorKind.Timeout, "the node lost track of the write (its log was replaced by a snapshot); it may or may not have been applied"));
                break;
        }
    }

    private void RestoreSnapshot(SnapshotMetadata meta)
    {
        var info = _snapshots.Find(meta.Index) ?? throw new InvalidOperationException($"installed snapshot {meta.Index} is not in the snapshot store");
        using (var stream = SnapshotStore.OpenRead(info)) _state.Restore(stream, meta.Index);
        _snapshots.ReleaseReceived(meta.Index);
        _proposals.OnSnapshotRestored(meta.Index, meta.Term, ResolveProposal);
        _log.LogInformation("installed snapshot {Index} (term {Term}) from the leader", meta.Index, meta.Term);
    }

    private void OnSoftState(SoftState ss)
    {
        PublishLeaderView();
        for (var i = _leaderWaiters.Count - 1; i >= 0; i--)
        {
            if (_leaderWaiters[i].Target != ss.Leader) continue;
            _leaderWaiters[i].Completion.TrySetResult(ss.Leader);
            _leaderWaiters.RemoveAt(i);
        }
        _log.LogInformation("{Id} is {Role} in term {Term}; leader: {Leader}", _options.Id, ss.Role, ss.Term, ss.Leader ?? "none");
    }

    private void UpdatePeers()
    {
        _peersConfig = _core.Config;
        PublishLeaderView();
        _transport.SetIdentity(_peersConfig.ClusterId, _incarnation);
        var peers = new Dictionary<string, string>();
        foreach (var m in _peersConfig.Members)
        {
            if (m.Id != _options.Id) peers[m.Id] = m.Address;
        }
        _transport.SetPeers(peers);
    }

    private void FailEverything(NodeException error)
    {
        var unknown = WriteOutcomeUnknown(error);
        _proposals.Clear((w, _) => w.Completion.TrySetException(unknown));
        foreach (var w in _snapshotWaiters) w.TrySetException(error);
        _snapshotWaiters.Clear();
        foreach (var (_, w) in _leaderWaiters) w.TrySetException(error);
        _leaderWaiters.Clear();
        foreach (var r in _reads.Values) r.Completion.TrySetException(error);
        _reads.Clear();
        foreach (var (r, _) in _readsWaitingForApply) r.Completion.TrySetException(error);
        _readsWaitingForApply.Clear();
        while (_inputs.TryDequeue(out _)) { }
        // Never proposed: not applied, safe to retry.
        while (_proposalInputs.TryDequeue(out var proposal))
        {
            _queueBound.Leave(proposal.Command.Length);
            proposal.Completion.TrySetException(error);
        }
        while (_readInputs.TryDequeue(out var read))
        {
            _queueBound.Leave(0);
            read.Completion.TrySetException(error);
        }
    }

    /// <summary>True when called on the loop thread (possible after awaiting an inline completion).</summary>
    public bool OnLoopThread => Thread.CurrentThread == _thread;

    [ThreadStatic]
    private static bool t_onAnyLoop;

    /// <summary>True when called on any node's loop thread in this process (where waiting for a loop would stall it).</summary>
    public static bool OnAnyLoopThread => t_onAnyLoop;

    /// <summary>True once the loop thread has ended (storage may then be closed).</summary>
    public bool Stopped => !_thread.IsAlive;

    public void Dispose()
    {
        _stopping = true;
        _wake.Set();
        // Stopping the sync thread first releases a loop waiting for a flush.
        _syncer?.Dispose();
        if (_thread.IsAlive && !OnLoopThread) _thread.Join(TimeSpan.FromSeconds(10));
        // A loop stuck in a write (a hung disk) still uses the event; leave it to the finalizer rather than crash it.
        if (!_thread.IsAlive) _wake.Dispose();
    }
}
