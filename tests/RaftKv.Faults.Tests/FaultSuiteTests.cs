using RaftKv.Faults.Tests.Faults;
using RaftKv.Faults.Tests.Relay;
using Xunit.Abstractions;

namespace RaftKv.Faults.Tests;

/// <summary>Runs on real clusters take most of the machine: one at a time.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class RealClusters
{
    public const string Name = "real raftkvd clusters";
}

/// <summary>
/// The bounded set CI runs: a few seeded schedules of ~20 s each against five real raftkvd nodes. A failure names its
/// seed and keeps its history (replay: see README, "Fault injection").
/// </summary>
[Collection(RealClusters.Name)]
public sealed class FaultSuiteTests(ITestOutputHelper output)
{
    private static readonly TimeSpan Duration = TimeSpan.FromSeconds(20);

    private async Task<FaultRunResult> Run(FaultRunOptions options)
    {
        using var log = new StringWriter();
        var result = await FaultRun.RunAsync(options, log);
        output.WriteLine(log.ToString());
        output.WriteLine(result.ToString());
        return result;
    }

    [Theory]
    [InlineData(1, new[] { FaultKind.KillRestart, FaultKind.PauseResume })]
    [InlineData(2, new[] { FaultKind.IsolateNode, FaultKind.IsolateLeader, FaultKind.MajorityMinoritySplit, FaultKind.LeaderCannotSend, FaultKind.LeaderCannotHear })]
    [InlineData(3, null)]
    public async Task Schedule_KeepsTheHistoryLinearizable_AndLosesNoAcknowledgedWrite(int seed, FaultKind[]? faults)
    {
        var result = await Run(new FaultRunOptions(seed, Duration, faults ?? FaultSchedule.Standard));
        Assert.True(result.Passed, result.ToString());
        // The run did what it says: faults were injected, and writes were both acknowledged and checked.
        Assert.NotEmpty(result.Faults);
        Assert.True(result.Acknowledged > 0, result.ToString());
        Assert.True(result.OpsChecked > 0, result.ToString());
        // The nodes' raft traffic really crossed the relays, so the partitions acted on it.
        Assert.True(result.Relayed.Forwarded > 0, result.ToString());
        if (faults is null || faults.Contains(FaultKind.IsolateNode)) Assert.True(result.Relayed.Dropped + result.Relayed.Cut > 0, result.ToString());
    }

    /// <summary>
    /// The checker is not vacuous: with a deliberately stale read path (reads at level none, half of them from a node
    /// cut off while writes go on elsewhere, recorded as if linearizable) the same run must fail.
    /// </summary>
    [Fact]
    public async Task StaleReadPath_IsCaughtByTheChecker()
    {
        var duration = TimeSpan.FromSeconds(10);
        var isolate = new FaultStep(TimeSpan.FromSeconds(1), FaultKind.IsolateNode, Target: 4, LinkRule.Cut, TimeSpan.FromSeconds(8), []);
        var result = await Run(new FaultRunOptions(9, duration, FaultSchedule.Standard)
        {
            Schedule = new FaultSchedule(9, [isolate]),
            StaleReads = true,
            StaleReadNode = 4,
        });
        Assert.False(result.Passed, "the checker accepted reads from a node cut off from the cluster: " + result);
        Assert.Contains("not linearizable", result.Summary);
        Assert.NotNull(result.HistoryPath);
        Assert.True(File.Exists(result.HistoryPath));
        File.Delete(result.HistoryPath);
        File.Delete(Path.ChangeExtension(result.HistoryPath, ".logs.txt"));
    }

    /// <summary>A node that lost its disk rejoins (as a new incarnation, replaced by the leader) while others are killed: nothing acknowledged is lost.</summary>
    [Fact]
    public async Task WipeAndRejoin_KeepsTheHistoryLinearizable()
    {
        // A fixed plan (a seeded one may draw no wipe): the founder and two others lose their disks in turn, with a
        // kill in between, so a rejoin overlaps a lagging node and a leader change.
        static FaultStep At(double seconds, FaultKind kind, int target) =>
            new(TimeSpan.FromSeconds(seconds), kind, target, LinkRule.Cut, TimeSpan.FromSeconds(2), []);
        var result = await Run(new FaultRunOptions(4, Duration, [FaultKind.WipeAndRejoin, FaultKind.KillRestart])
        {
            Schedule = new FaultSchedule(4, [At(1, FaultKind.WipeAndRejoin, 1), At(5, FaultKind.KillRestart, 2), At(9, FaultKind.WipeAndRejoin, 0), At(14, FaultKind.WipeAndRejoin, 3)]),
        });
        Assert.True(result.Passed, result.ToString());
        Assert.Equal(3, result.Faults.GetValueOrDefault(FaultKind.WipeAndRejoin));
    }
}
