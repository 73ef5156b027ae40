using System.Diagnostics;
using System.Runtime.InteropServices;

namespace RaftKv.Raft.Bench;

/// <summary>
/// Three cores in one process, messages handed over in memory, storage in memory: what the consensus logic alone
/// costs per committed entry. Proposals arrive in batches, as the node runtime drains its queue once per turn.
/// </summary>
internal static class CoreBenchmark
{
    public static int Run(string[] args)
    {
        var seconds = Args.Get(args, "--seconds", 5);
        var batch = (int)Args.Get(args, "--batch", 4096);
        var size = (int)Args.Get(args, "--size", 100);
        Console.WriteLine($"consensus core: 3 nodes in memory, {size}-byte proposals, {batch} proposals per turn, {seconds}s");

        var cluster = new Cluster();
        // The payload buffer is shared: the figure is the core's own allocation, not the application's payloads.
        var payload = new byte[size];
        Random.Shared.NextBytes(payload);

        // Warm-up (JIT, list capacities), then the measured run.
        cluster.Drive(payload, batch, TimeSpan.FromSeconds(1));
        GC.Collect();
        var allocBefore = GC.GetAllocatedBytesForCurrentThread();
        var gcBefore = GC.CollectionCount(0);
        var sw = Stopwatch.StartNew();
        var committed = cluster.Drive(payload, batch, TimeSpan.FromSeconds(seconds));
        sw.Stop();
        var alloc = GC.GetAllocatedBytesForCurrentThread() - allocBefore;
        Console.WriteLine($"committed entries:      {committed:N0}");
        Console.WriteLine($"entries/s:              {committed / sw.Elapsed.TotalSeconds:N0}");
        Console.WriteLine($"bytes allocated/entry:  {(double)alloc / committed:N1} (all three nodes, payload buffers excluded)");
        Console.WriteLine($"gen0 collections:       {GC.CollectionCount(0) - gcBefore}");
        return 0;
    }

    private sealed class Cluster
    {
        private readonly Dictionary<string, (RaftCore Core, MemoryStorage Storage)> _nodes = [];
        private readonly Queue<Message> _wire = new();
        private readonly RaftCore _leader;
        private ulong _applied;

        public Cluster()
        {
            var config = new ClusterConfig(new[] { "a", "b", "c" }.Select(id => new Member(id, id, true)));
            var seed = 1;
            foreach (var id in new[] { "a", "b", "c" })
            {
                var storage = new MemoryStorage();
                RaftCore.Bootstrap(storage, config);
                var core = new RaftCore(new RaftOptions
                {
                    Id = id,
                    Random = new Random(seed++),
                    MaxSizePerMessage = 4 << 20,
                    MaxInflightMessages = 64,
                    MaxUncommittedBytes = 0,
                }, storage);
                _nodes[id] = (core, storage);
            }
            _leader = _nodes["a"].Core;
            _leader.Campaign();
            Pump();
            if (_leader.Role != Role.Leader) throw new InvalidOperationException("benchmark leader was not elected");
        }

        public long Drive(byte[] payload, int batch, TimeSpan duration)
        {
            var start = _applied;
            var sw = Stopwatch.StartNew();
            while (sw.Elapsed < duration)
            {
                for (var i = 0; i < batch; i++)
                {
                    var r = _leader.Propose(payload);
                    if (!r.Accepted) throw new InvalidOperationException(r.Message);
                }
                Pump();
                Compact();
            }
            return (long)(_applied - start);
        }

        /// <summary>Runs every node's Ready loop and delivers messages until the cluster is quiet.</summary>
        private void Pump()
        {
            bool busy;
            do
            {
                busy = false;
                while (_wire.TryDequeue(out var m)) _nodes[m.To].Core.Step(m);
                foreach (var (id, (core, storage)) in _nodes)
                {
                    if (!core.HasReady) continue;
                    busy = true;
                    var rd = core.GetReady();
                    foreach (var m in rd.EagerMessages) _wire.Enqueue(m);
                    if (rd.Entries.Count > 0) storage.Append(CollectionsMarshal.AsSpan((List<Entry>)rd.Entries));
                    if (rd.HardState is { } hs) storage.SetHardState(hs);
                    foreach (var m in rd.Messages) _wire.Enqueue(m);
                    if (core == _leader && rd.CommittedEntries.Count > 0) _applied = rd.CommittedEntries[^1].Index;
                    core.Advance();
                }
            } while (busy || _wire.Count > 0);
        }

        /// <summary>Keeps memory flat: every node snapshots and compacts once it has applied enough.</summary>
        private void Compact()
        {
            foreach (var (core, storage) in _nodes.Values)
            {
                if (core.AppliedIndex < storage.FirstIndex + 200_000) continue;
                var meta = core.SnapshotMetadataAt(core.AppliedIndex);
                storage.SetSnapshot(meta);
                storage.Compact(core.AppliedIndex - 1000);
                core.SnapshotTaken(meta);
            }
        }
    }
}
