using System.Runtime.InteropServices;
using Microsoft.Extensions.Logging;
using RaftKv.Node.StateMachine;
using RaftKv.Node.Routing;
using RaftKv.Raft;

namespace RaftKv.Node.Runtime;

/// <summary>
/// The single-threaded part of a node: it steps and ticks the consensus core and carries out each Ready: send the
/// leader's eager messages, persist with one sync (inline, or in the background while the leader goes on), send the
/// rest, apply committed entries, answer waiting requests, take snapshots. It owns no thread, queue or clock: the
/// raft loop (<see cref="RaftLoop"/>) calls it from one thread, and the simulator drives this same class with
/// simulated storage, network and time. Every method must be called on that one thread.
/// </summary>
/// <remarks>
/// The core must have been made with <see cref="RaftOptions.AsyncStorageSync"/> exactly when a flusher is given,
/// over the same <paramref name="storage"/>, and the state machine restored from the storage's snapshot.
/// </remarks>
internal sealed partial class ReadyProcessor(
    ReadyProcessorOptions options,
    RaftCore core,
    IRaftLogStorage storage,
    IStateMachine state,
    IMessageSink sink,
    ISnapshotFiles snapshots,
    ISyncFlusher? flusher,
    TimeProvider time,
    ILogger log)
{
    private readonly ReadyProcessorOptions _options = options;
    private readonly RaftCore _core = core;
    private readonly IRaftLogStorage _storage = storage;
    private readonly IStateMachine _state = state;
    private readonly IMessageSink _sink = sink;
    private readonly ISnapshotFiles _snapshots = snapshots;
    private readonly ISyncFlusher? _flusher = flusher;
    private readonly TimeProvider _time = time;
    private readonly ILogger _log = log;
    // Peers found unreachable, and peers whose snapshot could not even be started, during a Ready: the core refuses
    // these inputs while a Ready is outstanding, so they are reported after Advance.
    private readonly List<string> _unreachable = [];
    private readonly List<string> _failedSnapshots = [];
    private ClusterConfig _peersConfig = ClusterConfig.Empty;
    // Readiness: the leader's commit index as of the first Append or heartbeat this node heard after it started (null: none yet).
    private ulong? _catchUpTarget;
    // TimeProvider timestamp of the last message from the leader (-1: none yet).
    private long _lastLeaderContact = -1;

    public RaftCore Core => _core;

    public IStateMachine State => _state;

    public IRaftLogStorage Storage => _storage;

    public bool HasReady => _core.HasReady;

    /// <summary>Called once before the first Ready: the sink learns the configuration the log holds, and the snapshot clock starts.</summary>
    public void Start()
    {
        UpdatePeers();
        _nextSnapshotCheck = After(_time.GetTimestamp(), _options.SnapshotInterval);
    }

    /// <summary>
    /// One tick of the core's clock, and what is due with it: a snapshot by time, identities to record, reads whose
    /// callers gave up, a flush stuck for too long.
    /// </summary>
    public void Tick()
    {
        _core.Tick();
        MaybeStartSnapshot(byInterval: true);
        RecordIdentities();
        ExpireReads();
        WaitForStuckSync();
    }

    /// <summary>A message from a peer (its snapshot, if any, is already in the snapshot store).</summary>
    public void Step(Message m)
    {
        if (_core.IsFromStaleIncarnation(m))
        {
            LogStaleIncarnation(m);
            return;
        }
        if (m.From == _core.Leader || m.Type is MessageType.Append or MessageType.Heartbeat) _lastLeaderContact = _time.GetTimestamp();
        if (m.Type == MessageType.Append) _catchUpTarget ??= m.Commit;
        else if (m.Type == MessageType.Heartbeat) _catchUpTarget ??= m.Index;
        _core.Step(m);
    }

    /// <summary>The outcome of a snapshot transfer the sink started.</summary>
    public void SnapshotSent(string peer, bool succeeded) => _core.ReportSnapshot(peer, succeeded);

    /// <summary>Carries out one Ready of the core (call while <see cref="HasReady"/>).</summary>
    public void HandleReady()
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
            if (!rd.MustSync) _storage.FlushToOs();
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
        if (inline && _flusher is not null) _core.ReportDurable(_storage.LastIndex);

        ReportDeliveryFailures();
        ServeReads();
        MaybeStartSnapshot(byInterval: false);
    }

    /// <summary>Peers that could not be reached and snapshots that could not be sent: inputs the core refuses while a Ready is outstanding.</summary>
    private void ReportDeliveryFailures()
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
            if (!_sink.SendSnapshot(m)) _failedSnapshots.Add(m.To);
            return;
        }
        if (!_sink.Send(m)) _unreachable.Add(m.To);
    }

    private void Apply(Entry e)
    {
        _state.Apply(e);
        _proposals.OnApplied(e.Index, e.Term, ResolveProposal);
    }

    private void RestoreSnapshot(SnapshotMetadata meta)
    {
        using (var stream = _snapshots.OpenReceived(meta.Index)) _state.Restore(stream, meta.Index);
        _snapshots.ReleaseReceived(meta.Index);
        _proposals.OnSnapshotRestored(meta.Index, meta.Term, ResolveProposal);
        _log.LogInformation("installed snapshot {Index} (term {Term}) from the leader", meta.Index, meta.Term);
    }

    /// <summary>Who leads, as of the last leadership or membership change here: read by routing on other threads without asking the loop.</summary>
    public LeaderView Leader => _leaderView;

    private volatile LeaderView _leaderView = LeaderView.Unknown;

    // Only on a leadership or membership change, so the loop's turns allocate nothing for it.
    private void PublishLeaderView() => _leaderView = LeaderView.Of(_options.Id, _core.Role == Role.Leader, _core.Leader, _core.Config);

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
        _sink.ConfigurationChanged(_peersConfig);
    }

    /// <summary>
    /// Fails every request this processor holds (the node is stopping). Writes already proposed may still commit
    /// through the other nodes: their callers hear "unknown", not "failed".
    /// </summary>
    public void FailEverything(NodeException error)
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
    }

    /// <summary>The message for a write in progress when the node stopped or lost track of it.</summary>
    public static NodeException WriteOutcomeUnknown(NodeException why) =>
        new(NodeErrorKind.Timeout, why.Message + "; a write in progress may or may not have been applied");

    /// <summary>A TimeProvider timestamp <paramref name="span"/> from <paramref name="from"/> (saturating, so TimeSpan.MaxValue means never).</summary>
    private long After(long from, TimeSpan span)
    {
        var ticks = span.TotalSeconds * _time.TimestampFrequency;
        return ticks >= long.MaxValue - from ? long.MaxValue : from + (long)ticks;
    }
}
