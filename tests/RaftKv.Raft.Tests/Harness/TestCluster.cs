using System.Runtime.InteropServices;
using System.Text;

namespace RaftKv.Raft.Tests.Harness;

/// <summary>
/// A scripted cluster for focused tests: the test decides which messages are delivered and when time passes.
/// Each node's Ready is carried out faithfully (persist to its MemoryStorage, send, apply, Advance).
/// </summary>
internal sealed class TestCluster
{
    public sealed class Node(string id, MemoryStorage storage)
    {
        public string Id { get; } = id;
        public MemoryStorage Storage { get; set; } = storage;
        public RaftCore Core { get; set; } = null!;
        public List<Entry> Applied { get; } = [];
        public List<ReadState> ReadStates { get; } = [];
        public List<FailedRead> FailedReads { get; } = [];
        public List<SnapshotMetadata> InstalledSnapshots { get; } = [];
        public bool Down { get; set; }
    }

    private readonly Func<string, RaftOptions> _options;
    public Dictionary<string, Node> Nodes { get; } = [];

    /// <summary>Messages sent and not yet delivered.</summary>
    public List<Message> InFlight { get; } = [];

    /// <summary>Every message ever sent, for tests that count them.</summary>
    public List<Message> Sent { get; } = [];

    /// <summary>Messages for which this returns true are lost.</summary>
    public Func<Message, bool>? Drop { get; set; }

    /// <summary>Pairs that cannot talk (both directions are listed separately).</summary>
    public HashSet<(string, string)> Cut { get; } = [];

    /// <summary>Each node's incarnation when the cluster models them (see <see cref="WithIncarnations"/>), else empty.</summary>
    public Dictionary<string, ulong> Incarnations { get; } = [];

    public TestCluster(int voters, int nonMembers = 0, Func<string, RaftOptions>? options = null, bool withIncarnations = false)
    {
        var ids = Enumerable.Range(1, voters + nonMembers).Select(i => "n" + i).ToList();
        if (withIncarnations)
        {
            foreach (var id in ids) Incarnations[id] = (ulong)(id.Length * 1000 + ids.IndexOf(id) + 1);
        }
        var baseOptions = options ?? (id => new RaftOptions { Id = id, Random = SeedFor(id) });
        _options = withIncarnations ? id => WithIncarnation(baseOptions(id), Incarnations[id]) : baseOptions;
        var config = new ClusterConfig(ids.Take(voters).Select(id => new Member(id, "addr-" + id, true, Incarnations.GetValueOrDefault(id))), withIncarnations ? "cluster-a" : "");
        foreach (var id in ids)
        {
            var storage = new MemoryStorage();
            if (Nodes.Count < voters) RaftCore.Bootstrap(storage, config);
            var node = new Node(id, storage);
            Nodes[id] = node;
            node.Core = new RaftCore(_options(id), storage);
        }
    }

    private static RaftOptions WithIncarnation(RaftOptions o, ulong incarnation) => new()
    {
        Id = o.Id, ElectionTicks = o.ElectionTicks, HeartbeatTicks = o.HeartbeatTicks, PreVote = o.PreVote, CheckQuorum = o.CheckQuorum,
        MaxSizePerMessage = o.MaxSizePerMessage, MaxInflightMessages = o.MaxInflightMessages, MaxInflightBytes = o.MaxInflightBytes,
        MaxUncommittedBytes = o.MaxUncommittedBytes, MaxCommittedBytesPerReady = o.MaxCommittedBytesPerReady,
        AsyncStorageSync = o.AsyncStorageSync, Applied = o.Applied, Random = o.Random, Incarnation = incarnation, Trace = o.Trace,
    };

    /// <summary>
    /// The node loses its storage (a wiped data directory) and comes back empty as <paramref name="incarnation"/>,
    /// as raftkvd does: a new incarnation whenever the WAL is created.
    /// </summary>
    /// <param name="id">The node.</param>
    /// <param name="incarnation">Its new incarnation.</param>
    /// <param name="startFrom">A configuration its new log starts with (as if received from the leader), or none.</param>
    public void Wipe(string id, ulong incarnation, ClusterConfig? startFrom = null)
    {
        var n = Nodes[id];
        InFlight.RemoveAll(m => m.From == id || m.To == id);
        Incarnations[id] = incarnation;
        n.Storage = new MemoryStorage();
        if (startFrom is not null) RaftCore.Bootstrap(n.Storage, startFrom);
        n.Applied.Clear();
        n.Down = false;
        n.Core = new RaftCore(_options(id), n.Storage);
    }

    /// <summary>A distinct, reproducible random generator per node (identical ones would split every vote).</summary>
    public static Random SeedFor(string id) => new(int.Parse(id.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture) * 7919);

    public RaftCore this[string id] => Nodes[id].Core;

    public static byte[] Bytes(string s) => Encoding.UTF8.GetBytes(s);

    public static string Text(Entry e) => Encoding.UTF8.GetString(e.Data.Span);

    /// <summary>Carries out one Ready of a node; returns false if it had none.</summary>
    public bool HandleReady(string id)
    {
        var n = Nodes[id];
        if (n.Down || !n.Core.HasReady) return false;
        var rd = n.Core.GetReady();
        foreach (var m in rd.EagerMessages) Send(m);
        if (rd.Snapshot is { } s)
        {
            n.Storage.InstallSnapshot(s);
            n.InstalledSnapshots.Add(s);
        }
        if (rd.Entries.Count > 0) n.Storage.Append(CollectionsMarshal.AsSpan((List<Entry>)rd.Entries));
        if (rd.HardState is { } hs) n.Storage.SetHardState(hs);
        foreach (var m in rd.Messages) Send(m);
        n.Applied.AddRange(rd.CommittedEntries);
        n.ReadStates.AddRange(rd.ReadStates);
        n.FailedReads.AddRange(rd.FailedReads);
        n.Core.Advance();
        return true;
    }

    private void Send(Message m)
    {
        Sent.Add(m);
        InFlight.Add(m);
    }

    /// <summary>Delivers one in-flight message (dropping it if the link is cut or the node down).</summary>
    public void Deliver(Message m)
    {
        InFlight.Remove(m);
        if (Cut.Contains((m.From, m.To)) || Nodes[m.To].Down || Drop?.Invoke(m) == true) return;
        // As the transport does from the connection's handshake: the receiver learns which incarnation sent it.
        Nodes[m.To].Core.Step(Incarnations.TryGetValue(m.From, out var incarnation) ? m.WithFromIncarnation(incarnation) : m);
    }

    /// <summary>Handles every Ready and delivers every message until nothing moves.</summary>
    public void Settle(int maxRounds = 10_000)
    {
        for (var round = 0; round < maxRounds; round++)
        {
            var moved = false;
            foreach (var id in Nodes.Keys) moved |= HandleReady(id);
            var batch = InFlight.ToList();
            foreach (var m in batch)
            {
                Deliver(m);
                moved = true;
            }
            if (!moved) return;
        }
        throw new InvalidOperationException("cluster did not settle");
    }

    /// <summary>Ticks every live node once, then settles.</summary>
    public void Tick(int times = 1)
    {
        for (var i = 0; i < times; i++)
        {
            foreach (var n in Nodes.Values.Where(n => !n.Down)) n.Core.Tick();
            Settle();
        }
    }

    public void Elect(string id)
    {
        Settle();
        this[id].Campaign();
        Settle();
        if (this[id].Role != Role.Leader) throw new InvalidOperationException($"{id} was not elected: {this[id].SoftState}");
    }

    public void Isolate(string id)
    {
        foreach (var other in Nodes.Keys)
        {
            if (other == id) continue;
            Cut.Add((id, other));
            Cut.Add((other, id));
        }
    }

    public void Heal() => Cut.Clear();

    public ProposeResult Propose(string id, string data)
    {
        var r = this[id].Propose(Bytes(data));
        return r;
    }

    /// <summary>Stops a node: what was not persisted through a Ready is lost, its messages in flight are dropped.</summary>
    public void Crash(string id)
    {
        Nodes[id].Down = true;
        InFlight.RemoveAll(m => m.From == id || m.To == id);
    }

    /// <summary>Starts a crashed node again from its storage.</summary>
    public void Restart(string id)
    {
        var n = Nodes[id];
        n.Down = false;
        n.Applied.Clear();
        n.Core = new RaftCore(_options(id), n.Storage);
    }

    public IEnumerable<string> AppliedData(string id) =>
        Nodes[id].Applied.Where(e => e.Type == EntryType.Normal && !e.Data.IsEmpty).Select(Text);
}
