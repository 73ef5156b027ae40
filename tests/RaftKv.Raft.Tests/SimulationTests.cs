using System.Collections.Concurrent;
using RaftKv.Simulation;
using Xunit.Abstractions;

namespace RaftKv.Raft.Tests;

/// <summary>
/// Thousands of randomized schedules of a whole cluster (crashes, partitions, loss, duplication, reordering,
/// membership changes, transfers, snapshots), each checked for Raft's safety properties after every step and for
/// recovery once the faults stop. A failure names its seed; <see cref="ReplaySeed"/> replays it exactly.
/// </summary>
public sealed class SimulationTests(ITestOutputHelper output)
{
    /// <summary>Seeds run by the suite; the soak command (bench project, "soak") runs as many as asked.</summary>
    private const int SuiteSeeds = 2000;

    [Fact]
    public void RandomizedSchedules_KeepEverySafetyPropertyAndRecover()
    {
        var failures = new ConcurrentBag<string>();
        var stats = new ConcurrentBag<SimStats>();
        Parallel.For(1, SuiteSeeds + 1, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, seed =>
        {
            try
            {
                stats.Add(new SimCluster(seed).Run());
            }
            catch (Exception e)
            {
                failures.Add($"seed {seed}: {e.Message} {e.StackTrace?.Split('\n').FirstOrDefault()?.Trim()}");
            }
        });
        foreach (var f in failures.OrderBy(f => f).Take(20)) output.WriteLine(f);
        Assert.Empty(failures);
        // The schedules must really have exercised the faults and features they claim to.
        var all = stats.ToList();
        output.WriteLine($"seeds={all.Count} elections={all.Sum(s => s.Elections)} acked={all.Sum(s => s.WritesAcked)} superseded={all.Sum(s => s.WritesSuperseded)} " +
                         $"reads={all.Sum(s => s.ReadsServed)} crashes={all.Sum(s => s.Crashes)} partitions={all.Sum(s => s.Partitions)} " +
                         $"snapshots={all.Sum(s => s.SnapshotsInstalled)} configChanges={all.Sum(s => s.ConfigChanges)} transfers={all.Sum(s => s.Transfers)} " +
                         $"syncs={all.Sum(s => s.SyncsCompleted)} syncFailures={all.Sum(s => s.SyncFailures)} tornCrashes={all.Sum(s => s.TornCrashes)} " +
                         $"snapshotWriteFailures={all.Sum(s => s.SnapshotWriteFailures)}");
        Assert.Equal(SuiteSeeds, all.Count);
        Assert.True(all.Sum(s => s.Crashes) > SuiteSeeds / 10);
        Assert.True(all.Sum(s => s.Partitions) > SuiteSeeds / 10);
        Assert.True(all.Sum(s => s.SnapshotsInstalled) > SuiteSeeds / 10);
        Assert.True(all.Sum(s => s.ConfigChanges) > SuiteSeeds / 10);
        Assert.True(all.Sum(s => s.Transfers) > SuiteSeeds / 20);
        Assert.True(all.Sum(s => s.WritesSuperseded) > 0);
        Assert.True(all.Sum(s => s.ReadsServed) > SuiteSeeds);
        Assert.True(all.Sum(s => s.WritesAcked) > SuiteSeeds * 10);
        // The runtime's own faults: background syncs that finished, failed, or were torn by a crash, and snapshot writes that failed.
        Assert.True(all.Sum(s => s.SyncsCompleted) > SuiteSeeds * 10);
        Assert.True(all.Sum(s => s.SyncFailures) > 0);
        Assert.True(all.Sum(s => s.TornCrashes) > 0);
        Assert.True(all.Sum(s => s.SnapshotWriteFailures) > 0);
    }

    /// <summary>Seeds of the wipe schedules run by the suite; RAFTKV_SIM_WIPE_SEEDS (or the soak command's --wipes) runs more.</summary>
    private const int WipeSuiteSeeds = 500;

    /// <summary>
    /// The same schedules with lost storage as a fault: now and then a node comes back with an empty disk as a new
    /// incarnation and rejoins as raftkvd does (replaced as a non-voter, caught up, promoted). Nothing committed may be
    /// lost or changed, every acknowledged write stays visible, and every wiped node gets back in. Without the core's
    /// stale-incarnation check a wiped voter votes with an empty log, and these schedules find it.
    /// </summary>
    [Fact]
    public void WipedNodes_RejoinAsNewIncarnations_WithoutLosingCommittedEntries()
    {
        var seeds = int.TryParse(Environment.GetEnvironmentVariable("RAFTKV_SIM_WIPE_SEEDS"), out var n) && n > 0 ? n : WipeSuiteSeeds;
        var failures = new ConcurrentBag<string>();
        var stats = new ConcurrentBag<SimStats>();
        Parallel.For(1, seeds + 1, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, seed =>
        {
            try
            {
                stats.Add(new SimCluster(seed, SimOptions.ForWipeSeed(seed)).Run());
            }
            catch (Exception e)
            {
                failures.Add($"seed {seed}: {e.Message} {e.StackTrace?.Split('\n').FirstOrDefault()?.Trim()}");
            }
        });
        var all = stats.ToList();
        output.WriteLine($"seeds={seeds} violations={failures.Count} wipes={all.Sum(s => s.Wipes)} rejoined={all.Sum(s => s.Rejoins)} " +
                         $"rejoinRefusals={all.Sum(s => s.RejoinRefusals)} staleIncarnationDrops={all.Sum(s => s.StaleIncarnationDrops)} " +
                         $"acked={all.Sum(s => s.WritesAcked)} reads={all.Sum(s => s.ReadsServed)} crashes={all.Sum(s => s.Crashes)} " +
                         $"partitions={all.Sum(s => s.Partitions)} snapshots={all.Sum(s => s.SnapshotsInstalled)}");
        foreach (var f in failures.OrderBy(f => f).Take(20)) output.WriteLine(f);
        Assert.Empty(failures);
        // The fault must really have been exercised: wipes of voters and others, rejoins that finished, and messages
        // from wiped nodes' previous or new lives that the cores had to ignore.
        Assert.True(all.Sum(s => s.Wipes) > seeds, $"only {all.Sum(s => s.Wipes)} wipes in {seeds} seeds");
        Assert.True(all.Sum(s => s.Rejoins) > seeds / 2, $"only {all.Sum(s => s.Rejoins)} rejoins in {seeds} seeds");
        Assert.True(all.Sum(s => s.StaleIncarnationDrops) > 0);
        Assert.True(all.Sum(s => s.WritesAcked) > seeds * 10);
    }

    /// <summary>
    /// The wipe schedules can fail: with a network that does not say which incarnation sent a message (so the cores
    /// cannot tell a wiped node from the voter it was; the same as the core without its stale-incarnation check), they
    /// find a wiped voter counted as the voter it was: a leader elected without a committed entry, two leaders in a
    /// term (a wiped voter forgot its vote), diverging logs.
    /// </summary>
    [Fact]
    public void WipeSchedules_FindAWipedVoterCountedAsTheVoterItWas()
    {
        const int seeds = 300;
        var safety = new ConcurrentBag<string>();
        Parallel.For(1, seeds + 1, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, seed =>
        {
            try
            {
                new SimCluster(seed, SimOptions.ForWipeSeed(seed) with { StampIncarnations = false }).Run();
            }
            catch (SimulationViolation e) when (!e.Message.Contains(": liveness:", StringComparison.Ordinal))
            {
                safety.Add(e.Message);
            }
            catch (SimulationViolation)
            {
                // A cluster that stops making progress is not what this test looks for.
            }
        });
        foreach (var f in safety.OrderBy(f => f).Take(10)) output.WriteLine(f);
        output.WriteLine($"{safety.Count} of {seeds} seeds broke a safety property");
        Assert.True(safety.Count >= seeds / 100, $"only {safety.Count} of {seeds} seeds found the fault");
    }

    [Fact]
    public void ReplayWipeSeed()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("RAFTKV_SIM_SEED"), out var s) ? s : 1;
        var stats = new SimCluster(seed, SimOptions.ForWipeSeed(seed)).Run();
        output.WriteLine(stats.ToString());
    }

    [Fact]
    public void ReplaySeed()
    {
        var seed = int.TryParse(Environment.GetEnvironmentVariable("RAFTKV_SIM_SEED"), out var s) ? s : 1;
        var stats = new SimCluster(seed).Run();
        output.WriteLine(stats.ToString());
    }

    [Fact]
    public void SameSeed_ReplaysExactly()
    {
        for (var seed = 1; seed <= 20; seed++)
        {
            Assert.Equal(new SimCluster(seed).Run(), new SimCluster(seed).Run());
        }
        for (var seed = 1; seed <= 10; seed++)
        {
            Assert.Equal(Outcome(seed), Outcome(seed));
        }

        // A wipe schedule, or the violation it ends in.
        static string Outcome(int seed)
        {
            try
            {
                return new SimCluster(seed, SimOptions.ForWipeSeed(seed)).Run().ToString();
            }
            catch (SimulationViolation e)
            {
                return e.Message;
            }
        }
    }
}
