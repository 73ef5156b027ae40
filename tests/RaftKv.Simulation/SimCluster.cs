using RaftKv.Raft;
using System.Runtime.InteropServices;

namespace RaftKv.Simulation;

/// <summary>What a finished schedule did, for reports and for tests that want to see the faults really happened.</summary>
public sealed record SimStats(
    int Seed, long Elections, long WritesAcked, long WritesSuperseded, long WritesUnknown, long ReadsServed, long ReadsFailed,
    long Crashes, long Partitions, long SnapshotsInstalled, long ConfigChanges, long Transfers, long LivenessUnits,
    long Wipes = 0, long Rejoins = 0, long RejoinRefusals = 0, long StaleIncarnationDrops = 0);

/// <summary>
/// A whole cluster in one thread, driven by one seed: nodes, network, faults and clients. After every step it
/// checks Raft's safety properties; after the faults stop it checks that the cluster recovers.
/// </summary>
public sealed class SimCluster
{
    private readonly int _seed;
    private readonly SimOptions _o;
    private readonly Random _rng;
    private readonly SimNetwork _net;
    private readonly List<SimNode> _nodes = [];
    private readonly Dictionary<string, SimNode> _byId = [];
    private readonly Func<string, IRaftLogStorage> _openDisk;
    private readonly Action<string>? _crashDisk;
    private readonly Action<string>? _wipeDisk;
    // Async mode (RaftOptions.AsyncStorageSync) models durability itself, so it needs the in-memory disk.
    private readonly bool _async;

    // Global truth the invariants are checked against.
    private readonly Dictionary<ulong, string> _leaderOfTerm = [];
    private readonly Dictionary<(ulong Index, ulong Term), (ulong Hash, ulong PrevTerm)> _entries = [];
    private readonly Dictionary<ulong, ulong> _committedTerm = [];
    private ulong _maxCommitted;
    private readonly Dictionary<ulong, (ulong Term, ulong Hash)> _applied = [];
    private ulong _maxAppliedGlobal;
    private readonly Dictionary<string, List<(ulong Index, string Value)>> _history = new(StringComparer.Ordinal);
    private ulong _maxAckedIndex;
    private readonly HashSet<string> _supersededValues = new(StringComparer.Ordinal);

    private long _now;
    private long _nextOpId = 1;
    private ulong _nextReadId = 1;
    private readonly List<(long Until, Action Undo)> _scheduled = [];
    private readonly Dictionary<string, long> _restartAt = [];
    private WriteOp? _finalWrite;
    private bool _finalWriteAcked;

    // Outcomes of InstallSnapshot messages, for the sender's core (ReportSnapshots mode), told at the next step.
    private readonly List<(RaftCore Sender, string To, bool Arrived)> _snapshotOutcomes = [];
    // Wiped nodes on their way back in (at most one at a time: see TryWipe).
    private readonly List<Rejoin> _rejoins = [];
    private long _wipes, _rejoined, _rejoinRefusals, _staleDrops;

    private long _elections, _acked, _superseded, _unknown, _readsServed, _readsFailed, _crashes, _partitions, _snapshots, _configChanges, _transfers;

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
        _openDisk = openDisk ?? (_ => new MemoryStorage());
        _crashDisk = crashDisk;
        _wipeDisk = wipeDisk;
        if (_o.WipeRate > 0 && openDisk is not null && wipeDisk is null)
            throw new ArgumentException("a schedule with wipes on given storage needs a wipeDisk hook", nameof(wipeDisk));
        _async = _o.AsyncStorageSync && crashDisk is null && openDisk is null;
        var voters = new List<Member>();
        for (var i = 0; i < _o.Nodes; i++)
        {
            var id = "n" + i;
            var node = new SimNode(id, _openDisk(id)) { TickOffset = _rng.Next(_o.TickUnits), Incarnation = IncarnationOf(i, 1) };
            _nodes.Add(node);
            _byId[id] = node;
            if (i < _o.InitialVoters) voters.Add(new Member(id, "addr-" + id, true, node.Incarnation));
        }
        // The founding configuration records the cluster's identity and each founder's incarnation, as raftkvd's does.
        var config = new ClusterConfig(voters, "sim-cluster-" + seed);
        foreach (var n in _nodes.Take(_o.InitialVoters))
        {
            RaftCore.Bootstrap(n.Disk, config);
            n.ConfigEntryIndexes.Add(1);
        }
        if (_async)
        {
            foreach (var n in _nodes) n.SyncedDisk = ((MemoryStorage)n.Disk).Clone();
        }
        foreach (var n in _nodes) n.SyncedHardState = n.Disk.HardState;
        foreach (var n in _nodes) Start(n);
    }

    public IReadOnlyList<SimNode> Nodes => _nodes;

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
            ProcessReadies();
            CheckInvariants();
            if (!faulty && LivenessReached())
            {
                livenessAt = _now - _o.FaultUnits;
                break;
            }
        }
        if (livenessAt < 0) Fail("liveness: " + LivenessReport());
        return new SimStats(_seed, _elections, _acked, _superseded, _unknown, _readsServed, _readsFailed, _crashes, _partitions,
            _snapshots, _configChanges, _transfers, livenessAt, _wipes, _rejoined, _rejoinRefusals,
            _staleDrops + _nodes.Where(n => n.Alive).Sum(n => n.Core!.StaleIncarnationDrops));
    }

    private void Fail(string message) => throw new SimulationViolation(_seed, _now, message, ReplayTest);

    // The test that replays this kind of schedule from its seed.
    private string ReplayTest => _o.WipeRate == 0 ? "ReplaySeed" : _o.StampIncarnations ? "ReplayWipeSeed" : "WipeSchedules_FindAWipedVoter";

    // ---- lifecycle -------------------------------------------------------------------------------------------

    private void Start(SimNode n)
    {
        var snapshot = n.Disk.Snapshot;
        n.RestoreState(n.SnapshotData);
        n.Applied = snapshot.Index;
        n.Proposals = new ProposalTracker<WriteOp>();
        n.Core = new RaftCore(new RaftOptions
        {
            Id = n.Id,
            ElectionTicks = _o.ElectionTicks,
            HeartbeatTicks = _o.HeartbeatTicks,
            Random = new Random(_rng.Next()),
            MaxSizePerMessage = _o.MaxEntriesPerMessage * 40L,
            MaxInflightMessages = 4,
            Applied = snapshot.Index,
            AsyncStorageSync = _async,
            SnapshotOutcomesReported = _o.ReportSnapshots,
            Incarnation = n.Incarnation,
        }, n.Disk);
        n.LastCommitSeen = n.Core.CommitIndex;
        n.LastAppliedSeen = n.Applied;
        if (n.Disk.HardState.Commit < n.DurableCommit) Fail($"{n.Id} restarted with commit {n.Disk.HardState.Commit} below the durable {n.DurableCommit}");
    }

    private void Crash(SimNode n)
    {
        if (!n.Alive) return;
        _crashes++;
        _staleDrops += n.Core!.StaleIncarnationDrops;
        n.Core = null;
        n.Kv.Clear();
        n.Proposals.Clear((op, _) => _unknown++);
        n.Reads.Clear();
        n.ReadsAwaitingApply.Clear();
        n.IncomingSnapshots.Clear();
        if (_async)
        {
            // What was written but not yet synced is lost, and the messages waiting for it never leave.
            n.PendingSyncs.Clear();
            n.Disk = n.SyncedDisk!.Clone();
        }
        else if (_crashDisk is null)
        {
            // Sync mode: a hard state written without a sync (only a new commit index) is lost, the harder case.
            n.Disk.SetHardState(n.SyncedHardState);
        }
        if (_crashDisk is not null)
        {
            // Real storage: drop the handle as a crash would and reopen what made it to disk.
            _crashDisk(n.Id);
            n.Disk = _openDisk(n.Id);
        }
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
        n.PendingSyncs.Clear();
        n.IncomingSnapshots.Clear();
        if (_wipeDisk is not null)
        {
            _wipeDisk(n.Id);
            n.Disk = _openDisk(n.Id);
        }
        else
        {
            n.Disk = new MemoryStorage();
        }
        if (n.Disk.LastIndex != 0 || !n.Disk.HardState.IsEmpty || !n.Disk.Snapshot.IsEmpty) Fail($"{n.Id}'s storage is not empty after a wipe");
        if (_async) n.SyncedDisk = ((MemoryStorage)n.Disk).Clone();
        n.SyncedHardState = n.Disk.HardState;
        n.SnapshotData = [];
        n.ConfigEntryIndexes.Clear();
        n.Applied = 0;
        n.DurableCommit = 0;
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
            if (e.Message.Type == MessageType.InstallSnapshot) n.IncomingSnapshots[e.Message.Snapshot!.Index] = e.SnapshotData!;
            NoteSnapshotOutcome(e, arrived: true);
            // As the transport does from the connection's handshake: the receiver learns which incarnation sent it.
            n.Core!.Step(_o.StampIncarnations ? e.Message.WithFromIncarnation(e.FromIncarnation) : e.Message);
        }
    }

    /// <summary>What a transport reports for a snapshot it streamed: stored by the receiver, or not.</summary>
    private void NoteSnapshotOutcome(Envelope e, bool arrived)
    {
        if (!_o.ReportSnapshots || e.Message.Type != MessageType.InstallSnapshot) return;
        // Only to the core that sent it: a crash since then ended that core, and its transfers with it.
        if (e.Sender is { } sender) _snapshotOutcomes.Add((sender, e.Message.To, arrived));
    }

    /// <summary>Tells the senders' cores, at the start of a step (never while a Ready is outstanding).</summary>
    private void ReportSnapshotOutcomes()
    {
        foreach (var (sender, to, arrived) in _snapshotOutcomes)
        {
            if (_nodes.Any(n => ReferenceEquals(n.Core, sender))) sender.ReportSnapshot(to, arrived);
        }
        _snapshotOutcomes.Clear();
    }

    private void TickNodes()
    {
        foreach (var n in _nodes)
        {
            if (n.Alive && (_now + n.TickOffset) % _o.TickUnits == 0) n.Core!.Tick();
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

    private void ClientWrite(WriteOp? op = null, SimNode? target = null)
    {
        var n = target ?? RandomAlive();
        if (n is null) return;
        op ??= new WriteOp(_nextOpId++, "k" + _rng.Next(8), "v" + _nextOpId, _now);
        var r = n.Core!.Propose(SimNode.EncodeCommand(op.Key, op.Value));
        if (!r.Accepted && r.Refusal == Refusal.NotLeader && r.Leader is not null && _byId[r.Leader].Alive)
        {
            // The client follows the redirect once, as the server's forwarding would.
            n = _byId[r.Leader];
            r = n.Core!.Propose(SimNode.EncodeCommand(op.Key, op.Value));
        }
        if (!r.Accepted)
        {
            if (r.Refusal == Refusal.None || string.IsNullOrEmpty(r.Message)) Fail($"refusal without a reason: {r}");
            return;
        }
        n.Proposals.Add(r.Index, r.Term, op);
    }

    private void ClientRead()
    {
        var n = RandomAlive();
        if (n is null) return;
        var op = new ReadOp(_nextOpId++, "k" + _rng.Next(8), _now, _maxAckedIndex);
        var id = _nextReadId++;
        n.Reads[id] = op;
        n.Core!.ReadIndex(id);
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

    private void Resolve(WriteOp op, ProposalOutcome outcome)
    {
        switch (outcome)
        {
            case ProposalOutcome.Applied:
                _acked++;
                // The acknowledged write's index: where its value sits in the global history.
                var list = _history[op.Key];
                var idx = list.FindLast(h => h.Value == op.Value).Index;
                if (idx == 0) Fail($"write {op} acknowledged but never applied");
                _maxAckedIndex = Math.Max(_maxAckedIndex, idx);
                if (_finalWrite == op) _finalWriteAcked = true;
                break;
            case ProposalOutcome.Superseded:
                _superseded++;
                if (_history.TryGetValue(op.Key, out var h) && h.Exists(x => x.Value == op.Value))
                    Fail($"write {op} reported superseded but it was applied");
                // It must never be applied later either (checked as entries apply).
                _supersededValues.Add(op.Value);
                break;
            default:
                _unknown++;
                break;
        }
    }

    // ---- Ready processing ------------------------------------------------------------------------------------

    private void ProcessReadies()
    {
        foreach (var n in _nodes)
        {
            for (var i = 0; i < 4 && n.Alive && n.Core!.HasReady; i++) HandleReady(n);
        }
    }

    private void CompleteDueSyncs()
    {
        foreach (var n in _nodes)
        {
            if (n.Alive) CompleteSyncs(n, all: false, report: true);
        }
    }

    // Background syncs finish in order: the image becomes what survives a crash, the messages held for it leave, and
    // the core hears how far its log is durable.
    private void CompleteSyncs(SimNode n, bool all, bool report)
    {
        while (n.PendingSyncs.TryPeek(out var p) && (all || p.Due <= _now))
        {
            n.PendingSyncs.Dequeue();
            n.SyncedDisk = p.Image;
            if (p.Image.HardState.Commit < n.DurableCommit) Fail($"{n.Id} durable commit went back from {n.DurableCommit} to {p.Image.HardState.Commit}");
            n.DurableCommit = p.Image.HardState.Commit;
            foreach (var m in p.Messages) SendFrom(n, m);
            if (report) n.Core!.ReportDurable(p.Index);
        }
        if (n.Core is { } core) core.DeferCommitOnlyAppends = n.PendingSyncs.Count > 0;
    }

    private void SendFrom(SimNode n, Message m)
    {
        byte[]? data = null;
        if (m.Type == MessageType.InstallSnapshot)
        {
            if (m.Snapshot!.Index != n.Disk.Snapshot.Index) Fail($"{n.Id} sends snapshot {m.Snapshot.Index} but holds {n.Disk.Snapshot.Index}");
            data = n.SnapshotData;
        }
        _net.Send(_now, new Envelope(m, data, n.Incarnation, data is null ? null : n.Core));
    }

    private void HandleReady(SimNode n)
    {
        var core = n.Core!;
        var rd = core.GetReady();
        foreach (var m in rd.EagerMessages) SendFrom(n, m);
        if (_net.Faulty && rd.MustSync && _rng.NextDouble() < _o.CrashRate * _o.CrashMidReadyRate * 20)
        {
            // Crash after the leader's messages left but before its own writes were durable.
            Crash(n);
            return;
        }

        // Async mode, as raftkvd: a Ready that installs a snapshot or changes the term or vote is synced before
        // Advance (after everything written before it); any other is written now and synced in the background.
        var syncNow = !_async || rd.Snapshot is not null
            || (rd.HardState is { } changed && (changed.Term != n.Disk.HardState.Term || changed.VotedFor != n.Disk.HardState.VotedFor));
        if (_async && syncNow) CompleteSyncs(n, all: true, report: false); // the report after Advance covers them

        // Persist: snapshot, entries, hard state; then the dependent messages may go.
        if (rd.Snapshot is { } snap)
        {
            if (!n.IncomingSnapshots.TryGetValue(snap.Index, out var data)) Fail($"{n.Id} installs snapshot {snap.Index} it never received");
            n.Disk.InstallSnapshot(snap);
            n.SnapshotData = data!;
            n.ConfigEntryIndexes.Clear();
            n.IncomingSnapshots.Clear();
            _snapshots++;
        }
        if (rd.Entries.Count > 0)
        {
            var first = rd.Entries[0].Index;
            n.ConfigEntryIndexes.RemoveWhere(i => i >= first);
            // A sync in progress makes durable what was written when it began, not the entries replaced since.
            foreach (var p in n.PendingSyncs) p.Index = Math.Min(p.Index, first - 1);
            n.Disk.Append(CollectionsMarshal.AsSpan((List<Entry>)rd.Entries));
            foreach (var e in rd.Entries)
            {
                if (e.Type == EntryType.Configuration) n.ConfigEntryIndexes.Add(e.Index);
                CheckLogMatching(n, e);
            }
        }
        if (rd.HardState is { } hs)
        {
            if (hs.Commit < n.DurableCommit) Fail($"{n.Id} durable commit went back from {n.DurableCommit} to {hs.Commit}");
            n.Disk.SetHardState(hs);
            if (syncNow && rd.MustSync) n.DurableCommit = hs.Commit;
            RecordCommitted(n, hs.Commit);
        }
        if (rd.MustSync)
        {
            n.Disk.Sync();
            n.SyncedHardState = n.Disk.HardState;
        }
        if (syncNow)
        {
            if (_async) n.SyncedDisk = ((MemoryStorage)n.Disk).Clone();
            foreach (var m in rd.Messages) SendFrom(n, m);
        }
        else if (!rd.MustSync)
        {
            // Nothing that needs a flush (at most a new commit index; a later flush covers it). Its messages may
            // still depend on writes whose flush is in progress (an acknowledgement of entries already written), so
            // they leave with the newest flush, or at once when none is in progress.
            if (n.PendingSyncs.Count > 0) n.PendingSyncs.Last().Messages.AddRange(rd.Messages);
            else foreach (var m in rd.Messages) SendFrom(n, m);
        }
        else
        {
            n.PendingSyncs.Enqueue(new PendingSync(_now + _rng.Next(_o.MaxSyncDelay + 1), ((MemoryStorage)n.Disk).Clone(), [.. rd.Messages], n.Disk.LastIndex));
            core.DeferCommitOnlyAppends = true; // while any flush is in flight (raftkvd: one with entries), a broader case
        }

        if (_net.Faulty && _o.CrashAfterVoteRate > 0 && rd.Messages.Any(m => m.Type == MessageType.VoteResponse && !m.Reject)
            && _rng.NextDouble() < _o.CrashAfterVoteRate)
        {
            // Crash right after a vote left: it must have been durable (with a restart before the other candidates'
            // requests arrive, a forgotten vote becomes a second vote in the same term).
            Crash(n);
            return;
        }

        // Apply.
        if (rd.Snapshot is { } installed)
        {
            if (installed.Index < n.Applied) Fail($"{n.Id} snapshot {installed.Index} would move applied back from {n.Applied}");
            n.RestoreState(n.SnapshotData);
            n.Applied = installed.Index;
            n.Proposals.OnSnapshotRestored(installed.Index, installed.Term, Resolve);
        }
        foreach (var e in rd.CommittedEntries)
        {
            if (e.Index != n.Applied + 1) Fail($"{n.Id} applies {e.Index} after {n.Applied}");
            CheckApplied(n, e);
            if (e.Type == EntryType.Normal && !e.Data.IsEmpty)
            {
                var (k, v) = SimNode.DecodeCommand(e.Data.Span);
                n.Kv[k] = v;
            }
            n.Applied = e.Index;
            n.Proposals.OnApplied(e.Index, e.Term, Resolve);
        }
        foreach (var rs in rd.ReadStates)
        {
            // The network duplicates messages, so an answer may come twice; the first one served the request.
            if (!n.Reads.Remove(rs.RequestId, out var op)) continue;
            // Linearizability: the read index covers every write acknowledged before the read began.
            if (rs.Index < op!.MinIndex) Fail($"{n.Id} read {op} got index {rs.Index} below acknowledged write index {op.MinIndex}");
            n.ReadsAwaitingApply.Add((op, rs.Index));
        }
        foreach (var fr in rd.FailedReads)
        {
            if (!n.Reads.Remove(fr.RequestId)) continue;
            if (!Enum.IsDefined(fr.Reason)) Fail("failed read without a reason");
            _readsFailed++;
        }
        if (rd.SoftState is { Role: Role.Leader } ss) OnNewLeader(n, ss.Term);
        core.Advance();
        if (_async && syncNow) core.ReportDurable(n.Disk.LastIndex);

        ServeReads(n);
        MaybeSnapshot(n);
    }

    private void ServeReads(SimNode n)
    {
        for (var i = n.ReadsAwaitingApply.Count - 1; i >= 0; i--)
        {
            var (op, index) = n.ReadsAwaitingApply[i];
            if (n.Applied < index) continue;
            n.ReadsAwaitingApply.RemoveAt(i);
            n.Kv.TryGetValue(op.Key, out var got);
            var expected = ExpectedValue(op.Key, n.Applied);
            if (got != expected) Fail($"{n.Id} read {op.Key}={got} at applied {n.Applied}, log says {expected}");
            _readsServed++;
        }
    }

    private void MaybeSnapshot(SimNode n)
    {
        if (_o.SnapshotEvery == 0 || n.Applied < n.Disk.Snapshot.Index + (ulong)_o.SnapshotEvery) return;
        var core = n.Core!;
        // raftkvd too waits for its background syncs before it records a snapshot and compacts the log.
        if (_async) CompleteSyncs(n, all: true, report: true);
        var meta = core.SnapshotMetadataAt(n.Applied);
        n.SnapshotData = n.SerializeState();
        n.Disk.SetSnapshot(meta);
        var compactTo = n.Applied > (ulong)_o.TrailingEntries ? n.Applied - (ulong)_o.TrailingEntries : 0;
        compactTo = Math.Min(compactTo, n.Disk.LastIndex);
        if (compactTo >= n.Disk.FirstIndex)
        {
            n.Disk.Compact(compactTo);
            n.ConfigEntryIndexes.RemoveWhere(i => i <= compactTo);
        }
        n.Disk.Sync();
        n.SyncedHardState = n.Disk.HardState;
        if (_async) n.SyncedDisk = ((MemoryStorage)n.Disk).Clone();
        core.SnapshotTaken(meta);
    }

    // ---- invariants ------------------------------------------------------------------------------------------

    private static ulong Hash(in Entry e)
    {
        var h = 14695981039346656037UL ^ (ulong)e.Type;
        foreach (var b in e.Data.Span) h = (h ^ b) * 1099511628211UL;
        return h;
    }

    /// <summary>Log matching (§5.3): entries with the same index and term have the same content and the same predecessor.</summary>
    private void CheckLogMatching(SimNode n, in Entry e)
    {
        var prevTerm = e.Index <= 1 ? 0 : n.Disk.Term(e.Index - 1);
        var key = (e.Index, e.Term);
        var value = (Hash(e), prevTerm);
        if (_entries.TryGetValue(key, out var seen))
        {
            if (seen != value) Fail($"log matching: {n.Id} holds {e} with prev term {prevTerm}, another node holds it with {seen}");
        }
        else
        {
            _entries[key] = value;
        }
    }

    private void RecordCommitted(SimNode n, ulong commit)
    {
        if (commit == 0 || commit < n.Disk.FirstIndex - 1) return;
        var term = n.Disk.Term(commit);
        if (_committedTerm.TryGetValue(commit, out var t))
        {
            if (t != term) Fail($"committed entry changed: index {commit} term {t} vs {term} on {n.Id}");
        }
        else
        {
            _committedTerm[commit] = term;
        }
        if (commit > _maxCommitted) _maxCommitted = commit;
    }

    /// <summary>State machine safety: no two nodes apply different entries at one index.</summary>
    private void CheckApplied(SimNode n, in Entry e)
    {
        var h = Hash(e);
        if (_applied.TryGetValue(e.Index, out var seen))
        {
            if (seen != (e.Term, h)) Fail($"{n.Id} applied {e} but another node applied term {seen.Term} at that index");
            return;
        }
        _applied[e.Index] = (e.Term, h);
        _maxAppliedGlobal = Math.Max(_maxAppliedGlobal, e.Index);
        if (e.Type == EntryType.Normal && !e.Data.IsEmpty)
        {
            var (k, v) = SimNode.DecodeCommand(e.Data.Span);
            if (_supersededValues.Contains(v)) Fail($"{n.Id} applied {k}={v}, a write its client was told was not applied");
            if (!_history.TryGetValue(k, out var list)) _history[k] = list = [];
            list.Add((e.Index, v));
        }
    }

    private string? ExpectedValue(string key, ulong applied)
    {
        if (!_history.TryGetValue(key, out var list)) return null;
        for (var i = list.Count - 1; i >= 0; i--)
        {
            if (list[i].Index <= applied) return list[i].Value;
        }
        return null;
    }

    /// <summary>Election safety (§5.2) and leader completeness (§5.4): one leader per term, holding every committed entry.</summary>
    private void OnNewLeader(SimNode n, ulong term)
    {
        _elections++;
        if (_leaderOfTerm.TryGetValue(term, out var other) && other != n.Id) Fail($"two leaders in term {term}: {other} and {n.Id}");
        _leaderOfTerm[term] = n.Id;
        if (_maxCommitted > 0 && _maxCommitted + 1 >= n.Core!.FirstIndex)
        {
            var t = n.Core.TermAt(_maxCommitted);
            if (t != _committedTerm[_maxCommitted])
                Fail($"leader completeness: new leader {n.Id} (term {term}) lacks committed entry {_maxCommitted}@{_committedTerm[_maxCommitted]} (has term {t?.ToString() ?? "none"})");
        }
    }

    private void CheckInvariants()
    {
        foreach (var n in _nodes)
        {
            if (!n.Alive) continue;
            var c = n.Core!;
            if (c.Role == Role.Leader)
            {
                if (_leaderOfTerm.TryGetValue(c.Term, out var l) && l != n.Id) Fail($"two leaders in term {c.Term}: {l} and {n.Id}");
                _leaderOfTerm[c.Term] = n.Id;
                // At most one configuration change in flight, counted from the durable log the simulator tracks.
                var uncommitted = n.ConfigEntryIndexes.GetViewBetween(c.CommitIndex + 1, ulong.MaxValue).Count;
                if (uncommitted > 1) Fail($"{n.Id} has {uncommitted} uncommitted configuration entries");
            }
            if (c.CommitIndex < n.LastCommitSeen) Fail($"{n.Id} commit went back {n.LastCommitSeen} -> {c.CommitIndex}");
            n.LastCommitSeen = c.CommitIndex;
            if (n.Applied < n.LastAppliedSeen) Fail($"{n.Id} applied went back {n.LastAppliedSeen} -> {n.Applied}");
            n.LastAppliedSeen = n.Applied;
            if (c.AppliedIndex != n.Applied) Fail($"{n.Id} core thinks applied {c.AppliedIndex}, state machine is at {n.Applied}");
        }
    }

    // ---- liveness ----------------------------------------------------------------------------------------------

    private bool LivenessReached()
    {
        var leaders = _nodes.Where(n => n.Alive && n.Core!.Role == Role.Leader).ToList();
        if (leaders.Count != 1) return false;
        var l = leaders[0];
        var c = l.Core!;
        if (c.TermAt(c.CommitIndex) != c.Term) return false;
        if (_finalWrite is null || (!_finalWriteAcked && l.Proposals.Count == 0 && _now % 50 == 0))
        {
            // One more write must go through end to end.
            _finalWrite = new WriteOp(_nextOpId++, "final", "f" + _nextOpId, _now);
            ClientWrite(_finalWrite, l);
        }
        if (!_finalWriteAcked || _rejoins.Count > 0) return false;
        foreach (var m in c.Config.Members)
        {
            var n = _byId[m.Id];
            if (!n.Alive || n.Proposals.Count > 0) return false;
        }
        CheckFinalState(l);
        return true;
    }

    /// <summary>
    /// Once recovered, every acknowledged write is in the leader's state machine, and every live node's state machine
    /// is exactly the committed history up to its applied index (a node that lost its storage rebuilt it).
    /// </summary>
    private void CheckFinalState(SimNode leader)
    {
        if (leader.Applied < _maxAckedIndex) Fail($"leader {leader.Id} applied {leader.Applied}, below acknowledged write index {_maxAckedIndex}");
        foreach (var n in _nodes.Where(n => n.Alive))
        {
            foreach (var key in _history.Keys)
            {
                n.Kv.TryGetValue(key, out var got);
                var expected = ExpectedValue(key, n.Applied);
                if (got != expected) Fail($"{n.Id} (life {n.Lives}) holds {key}={got} at applied {n.Applied}, the committed history says {expected}");
            }
            if (n.Kv.Count > _history.Count) Fail($"{n.Id} holds keys that were never committed");
        }
    }

    private string LivenessReport() => string.Join("; ", _nodes.Select(n => n.Alive
        ? $"{n.Id} {n.Core!.Role} t{n.Core.Term} leader={n.Core.Leader} commit={n.Core.CommitIndex} last={n.Core.LastIndex} applied={n.Applied} pending={n.Proposals.Count} config={n.Core.Config}" +
          (n.Lives > 1 || n.Core.StaleIncarnationDrops > 0 ? $" life={n.Lives} staleDrops={n.Core.StaleIncarnationDrops}" : "")
        : $"{n.Id} down")) + $"; final write acked={_finalWriteAcked}" + string.Concat(_rejoins.Select(j => "; " + j));
}
