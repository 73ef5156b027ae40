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
                         $"snapshots={all.Sum(s => s.SnapshotsInstalled)} configChanges={all.Sum(s => s.ConfigChanges)} transfers={all.Sum(s => s.Transfers)}");
        Assert.Equal(SuiteSeeds, all.Count);
        Assert.True(all.Sum(s => s.Crashes) > SuiteSeeds / 10);
        Assert.True(all.Sum(s => s.Partitions) > SuiteSeeds / 10);
        Assert.True(all.Sum(s => s.SnapshotsInstalled) > SuiteSeeds / 10);
        Assert.True(all.Sum(s => s.ConfigChanges) > SuiteSeeds / 10);
        Assert.True(all.Sum(s => s.Transfers) > SuiteSeeds / 20);
        Assert.True(all.Sum(s => s.WritesSuperseded) > 0);
        Assert.True(all.Sum(s => s.ReadsServed) > SuiteSeeds);
        Assert.True(all.Sum(s => s.WritesAcked) > SuiteSeeds * 10);
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
    }
}
