using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using RaftKv.Node.Routing;
using RaftKv.Node.StateMachine;
using RaftKv.Node.Transport;
using RaftKv.Raft;
using RaftKv.Storage.Snapshots;

namespace RaftKv.Node.Runtime;

/// <summary>
/// The one thread that owns the consensus core, and its queues and wake-ups. Each turn it ticks the core when due,
/// runs every input queued since the last turn (peer messages, proposals, reads, membership changes), then hands the
/// core's Readies to the <see cref="ReadyProcessor"/>, which persists, sends, applies and answers waiting requests.
/// Everything that arrived during one fsync is handled by the next turn, so a busy node batches naturally.
/// </summary>
internal sealed partial class RaftLoop : IDisposable
{
    private readonly NodeOptions _options;
    private readonly ILogger _log;
    private readonly IRaftLogStorage _storage;
    private readonly SnapshotStore _snapshots;
    private readonly IRaftTransport _transport;
    private readonly ReadyProcessor _processor;
    private readonly BackgroundSyncer? _syncer;
    // The one clock of the loop and its processor: ticks, request deadlines, snapshot timing.
    private readonly TimeProvider _time = TimeProvider.System;
    private readonly ConcurrentQueue<Action> _inputs = new();
    // Proposals, kept apart so a leader can hold them while its WAL flushes (see ReadyProcessor.Syncs.cs).
    private readonly ConcurrentQueue<QueuedProposal> _proposalInputs = new();
    // Linearizable reads, kept apart so that they need not wake the loop while a heartbeat round is answered.
    private readonly ConcurrentQueue<QueuedRead> _readInputs = new();
    // Bounds what waits in the two queues above (see RequestQueueBound).
    private readonly RequestQueueBound _queueBound;
    private volatile bool _readsHeld;
    private readonly ManualResetEventSlim _wake = new(false, spinCount: 1);
    private readonly Thread _thread;
    private readonly TimeSpan _tick;
    private volatile bool _stopping;
    private int _wakeRequested;
    private readonly TaskCompletionSource _recovered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly TaskCompletionSource<string> _failed = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly ulong _incarnation;

    // The state machine engine is chosen here (default: the in-memory key-value map); it comes empty or at its own
    // applied index, and is restored from restoreFrom when that snapshot is newer.
    public RaftLoop(NodeOptions options, ILogger logger, IRaftLogStorage storage, SnapshotStore snapshots, SnapshotInfo? restoreFrom,
        IRaftTransport transport, ulong incarnation, IStateMachine? state = null)
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
        state ??= new KvStateMachine(problem => logger.LogError("skipped malformed command: {Problem}", problem));
        if (restoreFrom is not null && restoreFrom.Metadata.Index > state.AppliedIndex)
        {
            using var stream = SnapshotStore.OpenRead(restoreFrom);
            state.Restore(stream, restoreFrom.Metadata.Index);
        }
        _tick = TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerMillisecond, options.HeartbeatTimeout.Ticks / 2));
        var heartbeatTicks = Math.Max(1, (int)(options.HeartbeatTimeout.Ticks / _tick.Ticks));
        var electionTicks = Math.Max(heartbeatTicks + 1, (int)(options.ElectionTimeout.Ticks / _tick.Ticks));
        var core = new RaftCore(new RaftOptions
        {
            Id = options.Id,
            ElectionTicks = electionTicks,
            HeartbeatTicks = heartbeatTicks,
            Applied = state.AppliedIndex,
            Incarnation = incarnation,
            // A log in memory has nothing to flush; only the WAL syncs in the background.
            AsyncStorageSync = storage.SyncsInBackground,
            // A batch of entries must fit one transport frame, or every Append carrying it is dropped for good.
            MaxSizePerMessage = EntryLimits.AppendBatchBytes(options.Transport.MaxFrameSize),
            // Every transfer ends in a report (ReadyProcessor.SnapshotSent): a long one is not restarted.
            SnapshotOutcomesReported = true,
            // The core's decisions (elections, step-downs, refusals), when debug logging is on.
            Trace = logger.IsEnabled(LogLevel.Debug) ? e => logger.LogDebug("Raft core: {Event}", e) : null,
        }, storage);
        if (core.Config.Members.Length > 0 && core.Config.Find(options.Id) is null)
        {
            // The id defaults to the raft address, so changing -raddr alone renames a node; under the new name it is not
            // a member, never hears from a leader, and would otherwise sit there without a word.
            _log.LogWarning(
                "This node's id {Id} is not in the cluster configuration it has stored (members: {Members}). If it was removed, that is expected; if its id or raft address (the default id) changed, restart it with the old one",
                options.Id, string.Join(", ", core.Config.Members.Select(m => m.Id)));
        }
        // Before the transport starts: its first handshakes must already say which cluster and incarnation this is.
        _transport.SetIdentity(core.Config.ClusterId, incarnation);
        if (storage.SyncsInBackground)
        {
            var flush = options.WalFlushForTests is { } hook ? s => hook((RaftKv.Storage.BackgroundSync)s) : (Action<IBackgroundSync>?)null;
            _syncer = new BackgroundSyncer(options.Id, OnSynced, OnSyncFailed, flush);
        }
        _processor = new ReadyProcessor(ReadyProcessorOptions.From(options, incarnation), core, storage, state, this, this, _syncer, _time, logger);
        _thread = new Thread(Run) { IsBackground = true, Name = "raft-loop " + options.Id };
    }

    public IStateMachine State => _processor.State;

    /// <summary>Who leads, as of the last leadership or membership change here: read by routing without asking the loop.</summary>
    public LeaderView Leader => _processor.Leader;

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
        // See ReadyProcessor.EntrySyncsChanged: a held proposal is taken when the flush holding it completes, which
        // wakes the loop.
        Interlocked.MemoryBarrier();
        if (!_processor.ProposalsHeld) Wake();
        // The loop may have stopped between the check above and the enqueue, and will not drain the queue again. It may
        // also have proposed this just before stopping: the outcome is unknown, not "not applied".
        if (_stopping) completion.TrySetException(ReadyProcessor.WriteOutcomeUnknown(new NodeException(NodeErrorKind.Unavailable, "the node is shutting down")));
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
            _processor.Start();
            // Recover before serving anything: apply everything the log says is committed (hraftd answers empty
            // values for seconds after a restart; requests queued meanwhile wait for this).
            while (_processor.HasReady) _processor.HandleReady();
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
        var started = _time.GetTimestamp();
        var nextTick = _tick;
        while (!_stopping)
        {
            var wait = nextTick - _time.GetElapsedTime(started);
            // Rounded up: the wait counts whole milliseconds, and a shorter one would return at once, so the loop
            // would spin through the last millisecond before every tick. Proposals and reads that came while they were
            // held and are free to go now did not wake the loop: take them first.
            var heldInputsReady = (!_processor.HoldProposals && !_proposalInputs.IsEmpty) || (!_readsHeld && !_readInputs.IsEmpty);
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
                var elapsed = _time.GetElapsedTime(started);
                if (elapsed >= nextTick)
                {
                    nextTick += _tick;
                    // After a long pause (GC, debugger), do not replay every missed tick in a burst.
                    if (nextTick < elapsed) nextTick = elapsed + _tick;
                    _processor.Tick();
                }
                while (_inputs.TryDequeue(out var input)) input();
                // Reads are taken whenever the loop is awake; held or not only decides whether they wake it.
                while (_readInputs.TryDequeue(out var read))
                {
                    _queueBound.Leave(0);
                    _processor.StartRead(read);
                }
                if (!_processor.HoldProposals)
                {
                    while (_proposalInputs.TryDequeue(out var proposal))
                    {
                        _queueBound.Leave(proposal.Command.Length);
                        _processor.Propose(proposal);
                    }
                }
                while (_processor.HasReady) _processor.HandleReady();
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
        Post(() => _processor.Step(m));
    }

    private void FailEverything(NodeException error)
    {
        _processor.FailEverything(error);
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
