using System.Collections.Concurrent;
using System.Diagnostics;
using RaftKv.Simulation;

namespace RaftKv.Raft.Bench;

/// <summary>
/// Runs as many simulator seeds as asked, on every core, and reports any violation with its seed. With --wipes the
/// schedules also wipe nodes' storage (<see cref="SimOptions.ForWipeSeed"/>).
/// </summary>
internal static class Soak
{
    public static int Run(string[] args)
    {
        var seeds = Args.Get(args, "--seeds", 10_000);
        var start = Args.Get(args, "--start", 1);
        var wipes = args.Contains("--wipes");
        var failures = new ConcurrentBag<string>();
        long done = 0, acked = 0, crashes = 0, partitions = 0, snapshots = 0, configChanges = 0, elections = 0, wiped = 0, rejoined = 0, staleDrops = 0;
        var sw = Stopwatch.StartNew();
        Console.WriteLine($"soak: seeds {start}..{start + seeds - 1}{(wipes ? " with wipes" : "")} on {Environment.ProcessorCount} cores");
        Parallel.For(start, start + seeds, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, seed =>
        {
            try
            {
                var s = new SimCluster((int)seed, wipes ? SimOptions.ForWipeSeed((int)seed) : null).Run();
                Interlocked.Add(ref acked, s.WritesAcked);
                Interlocked.Add(ref crashes, s.Crashes);
                Interlocked.Add(ref partitions, s.Partitions);
                Interlocked.Add(ref snapshots, s.SnapshotsInstalled);
                Interlocked.Add(ref configChanges, s.ConfigChanges);
                Interlocked.Add(ref elections, s.Elections);
                Interlocked.Add(ref wiped, s.Wipes);
                Interlocked.Add(ref rejoined, s.Rejoins);
                Interlocked.Add(ref staleDrops, s.StaleIncarnationDrops);
            }
            catch (Exception e)
            {
                failures.Add($"seed {seed}: {e.Message}");
                Console.WriteLine($"VIOLATION seed {seed}: {e.Message}");
            }
            var n = Interlocked.Increment(ref done);
            if (n % 10_000 == 0) Console.WriteLine($"  {n:N0} seeds, {sw.Elapsed.TotalSeconds:N0}s, {failures.Count} violations");
        });
        Console.WriteLine($"seeds run:        {done:N0} in {sw.Elapsed.TotalSeconds:N0}s");
        Console.WriteLine($"violations:       {failures.Count}");
        Console.WriteLine($"writes acked:     {acked:N0}");
        Console.WriteLine($"elections:        {elections:N0}");
        Console.WriteLine($"crashes:          {crashes:N0}");
        Console.WriteLine($"partitions:       {partitions:N0}");
        Console.WriteLine($"snapshots installed: {snapshots:N0}");
        Console.WriteLine($"config changes:   {configChanges:N0}");
        if (wipes)
        {
            Console.WriteLine($"wipes:            {wiped:N0}");
            Console.WriteLine($"rejoins finished: {rejoined:N0}");
            Console.WriteLine($"stale-incarnation messages ignored: {staleDrops:N0}");
        }
        foreach (var f in failures.Take(20)) Console.WriteLine(f);
        return failures.IsEmpty ? 0 : 1;
    }
}
