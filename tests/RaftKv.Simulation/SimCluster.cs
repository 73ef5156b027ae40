using Microsoft.Extensions.Logging.Abstractions;
using RaftKv.Node;
using RaftKv.Node.Runtime;
using RaftKv.Node.StateMachine;
using RaftKv.Raft;

namespace RaftKv.Simulation;

/// <summary>What a finished schedule did, for reports and for tests that want to see the faults really happened.</summary>
public sealed record SimStats(
    int Seed, long Elections, long WritesAcked, long WritesSuperseded, long WritesUnknown, long ReadsServed, long ReadsFailed,
    long Crashes, long Partitions, long SnapshotsInstalled, long ConfigChanges, long Transfers, long LivenessUnits,
    long Wipes = 0, long Rejoins = 0, long RejoinRefusals = 0, long StaleIncarnationDrops = 0,
    long SyncFailures = 0, long TornCrashes = 0, long SnapshotWriteFailures = 0, long SyncsCompleted = 0);

/// <summary>
/// A whole cluster in one thread, driven by one seed. Each node runs the runtime raftkvd runs (its
/// <see cref="ReadyProcessor"/>, over the real key-value state machine) with simulated storage (<see cref="SimDisk"/>:
/// slow, failing and torn syncs), simulated time and this class's network, faults and clients. The checkers
/// (<see cref="LogChecker"/>, <see cref="StateChecker"/>, <see cref="LeaderChecker"/>) watch every write, apply and
/// step; after the faults stop, the cluster must recover.
/// </summary>
public sealed class SimCluster
{
    private readonly int _seed;
    private readonly SimOptions _o;
    private readonly Random _rng;
    private readonly SimNetwork _net;
    private readonly SimTime _time = new();
    private readonly List<SimNode> _nodes = [];
    private readonly Dictionary<string, SimNode> _byId = [];
    private readonly Func<string, IRaftLogStorage>? _openDisk;
    private readonly Action<string>? _crashDisk;
    private readonly Action<string>? _wipeDisk;
    private readonly DiskModel _model;
    private readonly LogChecker _logChecker;
    private readonly StateChecker _stateChecker;
    private readonly LeaderChecker _leaderChecker;

    private long _now;
    private long _nextOpId = 1;
    private readonly List<(long Until, Action Undo)> _scheduled = [];
    private readonly Dictionary<string, long> _restartAt = [];
    private WriteOp? _finalWrite;
    private bool _finalWriteAcked;

    // Outcomes of InstallSnapshot messages, for the sender's processor (ReportSnapshots mode), told at the next step.
    private readonly List<(ReadyProcessor Sender, string To, bool Arrived)> _snapshotOutcomes = [];
    // Wiped nodes on their way back in (at most one at a time: see TryWipe).
    private readonly List<Rejoin> _rejoins = [];
    private long _wipes, _rejoined, _rejoinRefusals, _staleDrops, _syncFailures, _tornCrashes, _snapshotWriteFailures, _syncsCompleted;

    private long _acked, _superseded, _unknown, _readsServed, _readsFailed, _crashes, _partitions, _snapshots, _configChanges, _transfers;

    /// <param name="seed">Everything random comes from it.</param>
    /// <param name="options">The schedule (default: <see cref="SimOptions.ForSeed"/>).</param>
    /// <param name="openDisk">Opens a node's storage (default: in memory).</param>
    /// <param name="crashDisk">Drops what a crash loses from a node's storage (with <paramref name="openDisk"/>).</param>
    /// <param name="wipeDisk">Deletes a node's storage, so that <paramref name="openDisk"/> opens an empty one (needed with
    /// <paramref name="openDisk"/> when the schedule wipes nodes).</param>
    public SimCluster(int seed, SimOptions? options = null, Func<string, IRaftLogStorage>? openDisk = null, Action<string>? crashDisk = null,
        Action<string>? wipeDisk = null)
    {
        _seed = seed;
        _o = options ?? SimOptions.ForSeed(seed);
        _rng = new Random(seed);
        _net = new SimNetwork(_rng, _o);
        if (_o.ReportSnapshots) _net.Lost = e => NoteSnapshotOutcome(e, arrived: false);
        _openDisk = openDisk;
        _crashDisk = crashDisk;
        _wipeDisk = wipeDisk;
        if (_o.WipeRate > 0 && openDisk is not null && wipeDisk is null)
            throw new ArgumentException("a schedule with wipes on given storage needs a wipeDisk hook", nameof(wipeDisk));
        // Background syncs are modelled on the in-memory disk; real files are synced inline.
        _model = openDisk is not null ? DiskModel.Real : _o.AsyncStorageSync ? DiskModel.Background : DiskModel.Inline;
        _logChecker = new LogChecker(Fail);
        _stateChecker = new StateChecker(Fail);
        _leaderChecker = new LeaderChecker(Fail, _logChecker);
        var voters = new List<Member>();
        for (var i = 0; i < _o.Nodes; i++)
        {
            var id = "n" + i;
            var node = new SimNode(id, OpenDisk(id)) { TickOffset = _rng.Next(_o.TickUnits), Incarnation = IncarnationOf(i, 1) };
            _nodes.Add(node);
            _byId[id] = node;
            if (i < _o.InitialVoters) voters.Add(new Member(id, "addr-" + id, true, node.Incarnation));
        }
        // The founding configuration records the cluster's identity and each founder's incarnation, as raftkvd's does.
        var config = new ClusterConfig(voters, "sim-cluster-" + seed);
        foreach (var n in _nodes.Take(_o.InitialVoters)) RaftCore.Bootstrap(n.Disk, config);
        foreach (var n in _nodes) n.Disk.SyncFailureRate = _o.SyncFailureRate;
        foreach (var n in _nodes) Start(n);
    }

    internal IReadOnlyList<SimNode> Nodes => _nodes;

    private SimDisk OpenDisk(string id) =>
        new(id, _model, _openDisk is null ? new MemoryStorage() : _openDisk(id), _rng, _logChecker);

    // Distinct for every node and life, drawn without the schedule's generator so that seeds without wipes keep their
    // schedules: node index in the high half, life in the low half (never 0).
    private static ulong IncarnationOf(int nodeIndex, int life) => ((ulong)(nodeIndex + 1) << 32) | (uint)life;

    /// <summary>Runs the schedule: faults, then recovery. Throws <see cref="SimulationViolation"/> on any broken invariant.</summary>
    public SimStats Run()
    {
        var end = _o.FaultUnits + _o.LivenessUnits;
        long livenessAt = -1;
        for (_now = 0; _now < end; _now++)
        {
            _time.Now = _now;
            var faulty = _now < _o.FaultUnits;
            if (_now == _o.FaultUnits) Heal();
            DeliverMessages();
            TickNodes();
            if (faulty)
            {
                InjectFaults();
                ClientActions(allowMembershipChanges: true);
            }
            RestartDue();
            DriveRejoins();
            CompleteDueSyncs();
            CompleteSnapshotWrites();
            TakeQueuedWrites();
            ProcessReadies();
            CollectOutcomes();
            _leaderChecker.Check(_nodes);
            if (!faulty && LivenessReached())
            {
                livenessAt = _now - _o.FaultUnits;
                break;
            }
        }
        if (livenessAt < 0) Fail("liveness: " + LivenessReport());
        return new SimStats(_seed, _leaderChecker.Elections, _acked, _superseded, _unknown, _readsServed, _readsFailed, _crashes, _partitions,
            _snapshots + _nodes.Sum(n => n.Disk.SnapshotsInstalled), _configChanges, _transfers, livenessAt, _wipes, _rejoined, _rejoinRefusals, _staleDrops,
            _syncFailures, _tornCrashes, _snapshotWriteFailures + _nodes.Sum(n => n.SnapshotWriter?.Failures ?? 0), _syncsCompleted);
    }

    private void Fail(string message) => throw new SimulationViolation(_seed, _now, message, ReplayTest);

    // The test that replays this kind of schedule from its seed.
    private string ReplayTest => _o.WipeRate == 0 ? "ReplaySeed" : _o.StampIncarnations ? "ReplayWipeSeed" : "WipeSchedules_FindAWipedVoter";

    // ---- lifecycle -------------------------------------------------------------------------------------------

    /// <summary>Starts a life of the node: the runtime raftkvd runs, over what its disk and snapshot store kept.</summary>
    private void Start(SimNode n)
    {
        var snapshot = n.Disk.Snapshot;
        var state = new CheckedStateMachine(n.Id, new KvStateMachine(), _stateChecker);
        if (snapshot.Index > 0)
        {
            if (!n.Snapshots.Stored.TryGetValue(snapshot.Index, out var data)) Fail($"{n.Id} restarts from snapshot {snapshot.Index}, which it does not hold");
            state.Restore(new MemoryStream(data!), snapshot.Index);
        }
        var core = new RaftCore(new RaftOptions
        {
            Id = n.Id,
            ElectionTicks = _o.ElectionTicks,
            HeartbeatTicks = _o.HeartbeatTicks,
            Random = new Random(_rng.Next()),
            MaxSizePerMessage = _o.MaxEntriesPerMessage * 40L,
            MaxInflightMessages = 4,
            Applied = snapshot.Index,
            AsyncStorageSync = n.Disk.SyncsInBackground,
            SnapshotOutcomesReported = _o.ReportSnapshots,
            Incarnation = n.Incarnation,
        }, n.Disk);
        n.Flusher = n.Disk.SyncsInBackground ? new SimSyncFlusher(n.Disk, _rng, _o.MaxSyncDelay) { Now = _now } : null;
        n.SnapshotWriter = n.Snapshots.ForLife(_rng, _o, () => n.Disk.Snapshot.Index);
        n.SnapshotWriter.Now = _now;
        n.SnapshotWriter.Faulty = _net.Faulty;
        n.State = state;
        var options = new ReadyProcessorOptions
        {
            Id = n.Id,
            Incarnation = n.Incarnation,
            SnapshotThreshold = _o.SnapshotEvery == 0 ? int.MaxValue : _o.SnapshotEvery,
            TrailingLogs = _o.TrailingEntries,
            SnapshotInterval = TimeSpan.MaxValue,
            SnapshotRetryDelay = TimeSpan.FromMilliseconds(20L * _o.TickUnits),
            StuckSyncTimeout = TimeSpan.FromMilliseconds((long)_o.ElectionTicks * _o.TickUnits),
        };
        n.Processor = new ReadyProcessor(options, core, n.Disk, state, new Outputs(this, n), n.SnapshotWriter, n.Flusher, _time, NullLogger.Instance);
        n.LastCommitSeen = core.CommitIndex;
        n.LastAppliedSeen = state.AppliedIndex;
        Run(n, p => p.Start());
    }

    /// <summary>Hands the node's runtime one input; a fault the simulator injected (a crash, a failed flush) stops the node, as it stops raftkvd.</summary>
    private void Run(SimNode n, Action<ReadyProcessor> input)
    {
        if (n.Processor is not { } p) return;
        if (n.Flusher is { } f) f.Now = _now;
        n.SnapshotWriter!.Now = _now;
        try
        {
            input(p);
        }
        catch (Exception e) when (SimulatedFault.IsInjected(e))
        {
            if (e is SimulatedDiskFailure || e.InnerException is SimulatedDiskFailure) _syncFailures++;
            Crash(n);
        }
    }

    private void Crash(SimNode n)
    {
        if (!n.Alive) return;
        _crashes++;
        _snapshotWriteFailures += n.SnapshotWriter!.Failures;
        n.Processor = null;
        n.State = null;
        n.Flusher = null;
        n.SnapshotWriter = null;
        // Requests in progress: their clients never hear back.
        _unknown += n.Writes.Count + n.QueuedWrites.Count;
        n.Writes.Clear();
        n.QueuedWrites.Clear();
        n.Reads.Clear();
        n.CrashAfterReady = false;
        var torn = _o.TornCrashRate > 0 && n.Disk.SyncsInFlight > 0 && _rng.NextDouble() < _o.TornCrashRate;
        if (n.Disk.Crash(torn, () =>
            {
                // Real storage: drop the handle as a crash would and reopen what made it to disk.
                _crashDisk!(n.Id);
                return _openDisk!(n.Id);
            }))
            _tornCrashes++;
        _restartAt[n.Id] = _now + (_o.QuickRestartRate > 0 && _rng.NextDouble() < _o.QuickRestartRate ? 1 + _rng.Next(10) : 50 + _rng.Next(400));
    }

    private void RestartDue()
    {
        foreach (var n in _nodes)
        {
            if (!n.Alive && _restartAt.TryGetValue(n.Id, out var at) && at <= _now)
            {
                _restartAt.Remove(n.Id);
                Start(n);
            }
        }
    }

    private void Heal()
    {
        _net.HealAll();
        _net.Faulty = false;
        _scheduled.Clear();
        foreach (var n in _nodes)
        {
            n.Disk.SyncFailureRate = 0;
            if (n.SnapshotWriter is { } w) w.Faulty = false;
            if (!n.Alive) _restartAt[n.Id] = _now;
        }
    }

    // ---- lost storage ------------------------------------------------------------------------------------------

    /// <summary>
    /// Wipes a random node, if the cluster can afford it: Raft survives losing the data of a minority of voters, not
    /// of a majority. So there is a leader to replace the node, no membership change in progress, every member holds
    /// the leader's configuration (one still holding another, or a stale leader, could elect a leader under it and
    /// count the wiped node as a voter the simulator did not replace), no other wiped node still on its way back, and
    /// a voter is wiped only from three voters or more in every configuration any node holds.
    /// </summary>
    private void TryWipe()
    {
        if (_rejoins.Count > 0) return;
        var leader = SomeLeader();
        if (leader is null || leader.Core!.ConfigChangePending) return;
        var config = leader.Core.Config;
        if (_nodes.Where(n => config.Find(n.Id) is not null).Any(n => !NewestConfig(n).Equals(config))) return;
        var victim = _nodes[_rng.Next(_nodes.Count)];
        if (_nodes.Select(NewestConfig).Any(c => c.IsVoter(victim.Id) && c.Voters.Length < 3)) return;
        var member = config.Find(victim.Id);
        Wipe(victim);
        // A node outside the configuration has nothing to get back; random membership changes may add it later.
        if (member is not null) _rejoins.Add(new Rejoin(victim.Id, victim.Incarnation, member.IsVoter, _now));
    }

    /// <summary>The newest configuration a node holds: its core's when it is up, else the newest one on its disk.</summary>
    private static ClusterConfig NewestConfig(SimNode n)
    {
        if (n.Alive) return n.Core!.Config;
        var config = n.Disk.Snapshot.Config;
        var buffer = new List<Entry>();
        var from = Math.Max(n.Disk.FirstIndex, n.Disk.Snapshot.Index + 1);
        while (from <= n.Disk.LastIndex)
        {
            buffer.Clear();
            n.Disk.GetEntries(from, n.Disk.LastIndex + 1, long.MaxValue, buffer);
            foreach (var e in buffer)
            {
                if (e.Type == EntryType.Configuration) config = ClusterConfig.Decode(e.Data.Span);
            }
            from += (ulong)buffer.Count;
        }
        return config;
    }

    /// <summary>
    /// The node crashes and its storage is gone: it comes back empty, as a new incarnation (raftkvd draws one whenever
    /// it creates its WAL), with none of what it acknowledged. Its watermarks go too: the durable commit it had is not
    /// on any disk any more.
    /// </summary>
    private void Wipe(SimNode n)
    {
        _wipes++;
        Crash(n);
        _snapshots += n.Disk.SnapshotsInstalled;
        n.Disk.Dispose();
        _wipeDisk?.Invoke(n.Id);
        n.Disk = OpenDisk(n.Id);
        n.Disk.SyncFailureRate = _net.Faulty ? _o.SyncFailureRate : 0;
        if (n.Disk.LastIndex != 0 || !n.Disk.HardState.IsEmpty || !n.Disk.Snapshot.IsEmpty) Fail($"{n.Id}'s storage is not empty after a wipe");
        n.Snapshots = new SimSnapshotFiles();
        n.LastCommitSeen = 0;
        n.LastAppliedSeen = 0;
        n.Lives++;
        n.Incarnation = IncarnationOf(_nodes.IndexOf(n), n.Lives);
    }

    /// <summary>
    /// Plays raftkvd's join handler for each wiped node that is up, once per tick: replace the previous incarnation by
    /// the new one as a non-voter, wait until the leader's match index for it reaches the leader's commit index at the
    /// start of the wait, then promote it. Every step is read off the current leader's configuration and retried on
    /// refusal; the next change waits until the previous one is committed.
    /// </summary>
    private void DriveRejoins()
    {
        for (var i = _rejoins.Count - 1; i >= 0; i--)
        {
            var j = _rejoins[i];
            var node = _byId[j.Id];
            if (!node.Alive || (_now + node.TickOffset) % _o.TickUnits != 0) continue;
            var l = SomeLeader();
            if (l is null || l.Core!.ConfigChangePending) continue;
            var core = l.Core;
            var member = core.Config.Find(j.Id);
            if (member is null)
            {
                // Taken out of the cluster meanwhile: nothing to get back.
                _rejoins.RemoveAt(i);
                continue;
            }
            if (member.Incarnation != j.Incarnation)
            {
                j.Stage = RejoinStage.Replace;
                Propose(j, core, new ConfigChange(ConfigChangeType.AddNonVoter, j.Id, member.Address, j.Incarnation));
                continue;
            }
            if (!j.AsVoter || member.IsVoter)
            {
                _rejoined++;
                _rejoins.RemoveAt(i);
                continue;
            }
            if (j.Stage != RejoinStage.CatchUp || j.TargetLeader != l.Id || j.TargetTerm != core.Term)
            {
                // A new wait (raftkvd's join is repeated when leadership moves): the target is this leader's commit index now.
                j.Stage = RejoinStage.CatchUp;
                j.Target = core.CommitIndex;
                j.TargetLeader = l.Id;
                j.TargetTerm = core.Term;
            }
            if (core.ReplicationStatus.TryGetValue(j.Id, out var progress) && progress.Match >= j.Target)
                Propose(j, core, new ConfigChange(ConfigChangeType.AddVoter, j.Id, member.Address, j.Incarnation));
        }
    }

    private void Propose(Rejoin j, RaftCore leader, ConfigChange change)
    {
        var r = leader.ProposeConfigChange(change);
        if (r.Accepted)
        {
            _configChanges++;
            return;
        }
        if (r.Refusal == Refusal.InvalidConfigChange) Fail($"{leader.Id} refused {change} for {j}: {r.Message}");
        j.Refusals++;
        _rejoinRefusals++;
    }

    // ---- the world moving ----------------------------------------------------------------------------------

    private void DeliverMessages()
    {
        ReportSnapshotOutcomes();
        foreach (var e in _net.Due(_now).ToList())
        {
            var n = _byId[e.Message.To];
            if (!n.Alive)
            {
                NoteSnapshotOutcome(e, arrived: false);
                continue;
            }
            // As the transport does: the snapshot's bytes are in the store before the core hears of it.
            if (e.Message.Type == MessageType.InstallSnapshot) n.Snapshots.Stored[e.Message.Snapshot!.Index] = e.SnapshotData!;
            NoteSnapshotOutcome(e, arrived: true);
            // As the transport does from the connection's handshake: the receiver learns which incarnation sent it.
            var m = _o.StampIncarnations ? e.Message.WithFromIncarnation(e.FromIncarnation) : e.Message;
            if (n.Core!.IsFromStaleIncarnation(m)) _staleDrops++;
            Run(n, p => p.Step(m));
        }
    }

    /// <summary>What a transport reports for a snapshot it streamed: stored by the receiver, or not.</summary>
    private void NoteSnapshotOutcome(Envelope e, bool arrived)
    {
        if (!_o.ReportSnapshots || e.Message.Type != MessageType.InstallSnapshot) return;
        // Only to the runtime that sent it: a crash since then ended it, and its transfers with it.
        if (e.Sender is { } sender) _snapshotOutcomes.Add((sender, e.Message.To, arrived));
    }

    /// <summary>Tells the senders, at the start of a step (never while a Ready is outstanding).</summary>
    private void ReportSnapshotOutcomes()
    {
        var outcomes = _snapshotOutcomes.ToList();
        _snapshotOutcomes.Clear();
        foreach (var (sender, to, arrived) in outcomes)
        {
            var n = _byId[sender.Core.Id];
            if (ReferenceEquals(n.Processor, sender)) Run(n, p => p.SnapshotSent(to, arrived));
        }
    }

    private void TickNodes()
    {
        foreach (var n in _nodes)
        {
            if (n.Alive && (_now + n.TickOffset) % _o.TickUnits == 0) Run(n, p => p.Tick());
        }
    }

    private void InjectFaults()
    {
        for (var i = _scheduled.Count - 1; i >= 0; i--)
        {
            if (_scheduled[i].Until > _now) continue;
            _scheduled[i].Undo();
            _scheduled.RemoveAt(i);
        }
        if (_rng.NextDouble() < _o.PartitionRate && !_net.HasPartition)
        {
            _partitions++;
            var oneWay = _rng.NextDouble() < 0.3;
            var side = _nodes.Where(_ => _rng.NextDouble() < 0.5).Select(n => n.Id).ToHashSet();
            foreach (var a in _nodes)
            foreach (var b in _nodes)
            {
                if (side.Contains(a.Id) && !side.Contains(b.Id))
                {
                    _net.Block(a.Id, b.Id);
                    if (!oneWay) _net.Block(b.Id, a.Id);
                }
            }
            _scheduled.Add((_now + 100 + _rng.Next(800), _net.HealAll));
        }
        if (_rng.NextDouble() < _o.CrashRate)
        {
            var victim = _nodes[_rng.Next(_nodes.Count)];
            Crash(victim);
        }
        // Drawn only when wipes are on, so that schedules without them stay as they were.
        if (_o.WipeRate > 0 && _rng.NextDouble() < _o.WipeRate) TryWipe();
    }

    private SimNode? RandomAlive()
    {
        var alive = _nodes.Where(n => n.Alive).ToList();
        return alive.Count == 0 ? null : alive[_rng.Next(alive.Count)];
    }

    private SimNode? SomeLeader()
    {
        var leaders = _nodes.Where(n => n.Alive && n.Core!.Role == Role.Leader).ToList();
        return leaders.Count == 0 ? null : leaders[_rng.Next(leaders.Count)];
    }

    private void ClientActions(bool allowMembershipChanges)
    {
        if (_rng.NextDouble() < _o.WriteRate) ClientWrite();
        if (_rng.NextDouble() < _o.ReadRate) ClientRead();
        if (!allowMembershipChanges) return;
        // No other membership change while a wiped node is being replaced, as a careful operator would: removing a
        // healthy voter meanwhile could leave a quorum that needs the voter whose data is gone.
        if (_rng.NextDouble() < _o.ConfigChangeRate && _rejoins.Count == 0) ClientConfigChange();
        if (_rng.NextDouble() < _o.TransferRate)
        {
            var l = SomeLeader();
            if (l is not null)
            {
                var voters = l.Core!.Config.Voters;
                var target = voters.Length > 0 ? voters[_rng.Next(voters.Length)] : null;
                // Only a real hand-over counts; "transfer" to itself is accepted and does nothing.
                if (target is not null && target != l.Id && l.Core.TransferLeadership(target).Accepted) _transfers++;
            }
        }
    }

    /// <summary>How long a client waits for an answer: a request its client gave up on is dropped by the runtime.</summary>
    private TimeSpan RequestTimeout => TimeSpan.FromMilliseconds(10L * _o.ElectionTicks * _o.TickUnits);

    private void ClientWrite(WriteOp? op = null, SimNode? target = null)
    {
        var n = target ?? RandomAlive();
        if (n is null) return;
        // The node forwards to the leader it knows, as the server's routing does.
        if (target is null && n.Core!.Role != Role.Leader && n.Core.Leader is { } leader && _byId[leader].Alive) n = _byId[leader];
        op ??= new WriteOp(_nextOpId++, "k" + _rng.Next(8), "v" + _nextOpId, _now);
        var completion = new TaskCompletionSource<ulong>();
        n.QueuedWrites.Enqueue((op, new QueuedProposal(KvCommand.EncodeSet([KeyValuePair.Create(op.Key, op.Value)]), completion,
            n.Processor!.DeadlineAfter(RequestTimeout), CancellationToken.None)));
    }

    private void ClientRead()
    {
        var n = RandomAlive();
        if (n is null) return;
        var op = new ReadOp(_nextOpId++, "k" + _rng.Next(8), _now, _stateChecker.MaxAckedIndex);
        var completion = new TaskCompletionSource<string?>();
        n.Reads.Add((op, completion.Task));
        Run(n, p => p.StartRead(new QueuedRead(op.Key, completion, p.DeadlineAfter(RequestTimeout), CancellationToken.None)));
    }

    private void ClientConfigChange()
    {
        var l = SomeLeader();
        if (l is null) return;
        var config = l.Core!.Config;
        var outside = _nodes.Where(n => config.Find(n.Id) is null).ToList();
        var nonVoters = config.Members.Where(m => !m.IsVoter).ToList();
        ConfigChange change;
        var pick = _rng.Next(3);
        if (pick == 0 && outside.Count > 0)
        {
            var n = outside[_rng.Next(outside.Count)];
            change = new ConfigChange(_rng.NextDouble() < 0.5 ? ConfigChangeType.AddVoter : ConfigChangeType.AddNonVoter, n.Id, "addr-" + n.Id, n.Incarnation);
        }
        else if (pick == 1 && nonVoters.Count > 0)
        {
            change = new ConfigChange(ConfigChangeType.AddVoter, nonVoters[_rng.Next(nonVoters.Count)].Id);
        }
        else
        {
            // Keep at least two members so the cluster stays interesting; the core refuses removing the last voter.
            if (config.Members.Length <= 2) return;
            change = new ConfigChange(ConfigChangeType.Remove, config.Members[_rng.Next(config.Members.Length)].Id);
        }
        if (l.Core.ProposeConfigChange(change).Accepted) _configChanges++;
    }

    // ---- the runtime's turns -------------------------------------------------------------------------------

    /// <summary>The flushes due by now finish, in order: what they cover survives a crash, and the messages held for them leave.</summary>
    private void CompleteDueSyncs()
    {
        foreach (var n in _nodes)
        {
            if (n.Flusher is null) continue;
            Run(n, p =>
            {
                if (n.Flusher.CompleteDue(_now) is not { } done) return;
                _syncsCompleted++;
                p.SyncsCompleted(done.Seq, done.Sync);
            });
        }
    }

    private void CompleteSnapshotWrites()
    {
        foreach (var n in _nodes)
        {
            if (n.SnapshotWriter is { } w) Run(n, p => w.CompleteDue(_now, p));
        }
    }

    /// <summary>As raftkvd's loop does each turn: queued writes are proposed unless the leader holds them while its entries flush.</summary>
    private void TakeQueuedWrites()
    {
        foreach (var n in _nodes)
        {
            while (n.Alive && !n.Processor!.HoldProposals && n.QueuedWrites.TryDequeue(out var w))
            {
                n.Writes.Add((w.Op, w.Proposal.Completion.Task));
                Run(n, p => p.Propose(w.Proposal));
            }
        }
    }

    private void ProcessReadies()
    {
        foreach (var n in _nodes)
        {
            for (var i = 0; i < 4 && n.Alive && n.Processor!.HasReady; i++)
            {
                // A crash after the Ready was written (and the leader's eager messages left) but before it was durable.
                if (_net.Faulty && _rng.NextDouble() < _o.CrashRate * _o.CrashMidReadyRate * 20) n.Disk.CrashAtNextSync = true;
                Run(n, p => p.HandleReady());
                n.Disk.CrashAtNextSync = false;
                if (n.CrashAfterReady)
                {
                    // Right after a vote left: it must have been durable (with a restart before the other candidates'
                    // requests arrive, a forgotten vote becomes a second vote in the same term).
                    Crash(n);
                }
            }
        }
    }

    /// <summary>Reads the answers the runtime gave the clients, and checks them.</summary>
    private void CollectOutcomes()
    {
        foreach (var n in _nodes)
        {
            for (var i = n.Writes.Count - 1; i >= 0; i--)
            {
                var (op, outcome) = n.Writes[i];
                if (!outcome.IsCompleted) continue;
                n.Writes.RemoveAt(i);
                Resolve(op, outcome);
            }
            for (var i = n.Reads.Count - 1; i >= 0; i--)
            {
                var (op, outcome) = n.Reads[i];
                if (!outcome.IsCompleted) continue;
                n.Reads.RemoveAt(i);
                if (outcome.IsCompletedSuccessfully)
                {
                    _stateChecker.OnRead(n.Id, op, outcome.Result);
                    _readsServed++;
                }
                else
                {
                    if (outcome.Exception!.InnerException is not NodeException { Message.Length: > 0 }) Fail($"read {op} failed without a reason: {outcome.Exception}");
                    _readsFailed++;
                }
            }
        }
    }

    private void Resolve(WriteOp op, Task<ulong> outcome)
    {
        if (outcome.IsCompletedSuccessfully)
        {
            _acked++;
            _stateChecker.OnAcknowledged(op, outcome.Result);
            if (_finalWrite == op) _finalWriteAcked = true;
            return;
        }
        if (outcome.Exception!.InnerException is not NodeException { Message.Length: > 0 } e)
        {
            Fail($"write {op} failed without a reason: {outcome.Exception}");
            return;
        }
        switch (e.Kind)
        {
            case NodeErrorKind.Timeout:
                // The runtime lost track of it: it may or may not be applied.
                _unknown++;
                break;
            case NodeErrorKind.NotApplied:
                _superseded++;
                _stateChecker.OnNotApplied(op);
                break;
            default:
                // Refused before it was proposed (no leader, busy): never applied either.
                _stateChecker.OnNotApplied(op);
                break;
        }
    }

    /// <summary>A node's outputs: the network for its messages, and its stored snapshots for the InstallSnapshots it sends.</summary>
    private sealed class Outputs(SimCluster cluster, SimNode node) : IMessageSink
    {
        public bool Send(Message m)
        {
            if (cluster._net.Faulty && cluster._o.CrashAfterVoteRate > 0 && m.Type == MessageType.VoteResponse && !m.Reject
                && cluster._rng.NextDouble() < cluster._o.CrashAfterVoteRate)
                node.CrashAfterReady = true;
            cluster._net.Send(cluster._now, new Envelope(m, null, node.Incarnation));
            return true;
        }

        public bool SendSnapshot(Message m)
        {
            if (!node.Snapshots.Stored.TryGetValue(m.Snapshot!.Index, out var data)) cluster.Fail($"{node.Id} sends snapshot {m.Snapshot.Index} it does not hold");
            cluster._net.Send(cluster._now, new Envelope(m, data, node.Incarnation, node.Processor));
            return true;
        }

        public void ConfigurationChanged(ClusterConfig config) { }
    }

    // ---- liveness ----------------------------------------------------------------------------------------------

    private bool LivenessReached()
    {
        var leaders = _nodes.Where(n => n.Alive && n.Core!.Role == Role.Leader).ToList();
        if (leaders.Count != 1) return false;
        var l = leaders[0];
        var c = l.Core!;
        if (c.TermAt(c.CommitIndex) != c.Term) return false;
        if (_finalWrite is null || (!_finalWriteAcked && l.Writes.Count == 0 && l.QueuedWrites.Count == 0 && _now % 50 == 0))
        {
            // One more write must go through end to end.
            _finalWrite = new WriteOp(_nextOpId++, "final", "f" + _nextOpId, _now);
            ClientWrite(_finalWrite, l);
        }
        if (!_finalWriteAcked || _rejoins.Count > 0) return false;
        foreach (var m in c.Config.Members)
        {
            var n = _byId[m.Id];
            if (!n.Alive || n.Writes.Count > 0 || n.QueuedWrites.Count > 0) return false;
        }
        _stateChecker.CheckFinalState(l, _nodes.Where(n => n.Alive));
        return true;
    }

    private string LivenessReport() => string.Join("; ", _nodes.Select(n => n.Alive
        ? $"{n.Id} {n.Core!.Role} t{n.Core.Term} leader={n.Core.Leader} commit={n.Core.CommitIndex} last={n.Core.LastIndex} applied={n.State!.AppliedIndex} pending={n.Writes.Count} config={n.Core.Config}" +
          (n.Lives > 1 ? $" life={n.Lives}" : "")
        : $"{n.Id} down")) + $"; final write acked={_finalWriteAcked}" + string.Concat(_rejoins.Select(j => "; " + j));
}
