using RaftKv.Faults.Tests.Relay;

namespace RaftKv.Faults.Tests.Faults;

/// <summary>The faults a schedule can inject.</summary>
public enum FaultKind
{
    /// <summary>kill -9 a node, then start it again on the same data.</summary>
    KillRestart,

    /// <summary>SIGSTOP a node, then SIGCONT it.</summary>
    PauseResume,

    /// <summary>Cut one node off from every other, both ways.</summary>
    IsolateNode,

    /// <summary>Cut whoever leads now off from every other node, both ways.</summary>
    IsolateLeader,

    /// <summary>Split the nodes in a majority and a minority that cannot reach each other.</summary>
    MajorityMinoritySplit,

    /// <summary>The leader's messages to the others are lost; theirs still reach it.</summary>
    LeaderCannotSend,

    /// <summary>The others' messages to the leader are lost; the leader's still reach them.</summary>
    LeaderCannotHear,

    /// <summary>kill -9 a node, delete its data directory, start it with -join: a node that lost its disk.</summary>
    WipeAndRejoin,
}

/// <summary>
/// One fault: when it starts (from the run's start), what, on which node (an index into the nodes; the leader
/// kinds pick the leader when the fault starts), whether its partitions drop or cut, and how long it lasts.
/// <see cref="Split"/> orders the nodes for a majority/minority split: the first minority-size ones are the minority.
/// </summary>
public sealed record FaultStep(TimeSpan At, FaultKind Kind, int Target, LinkRule Mode, TimeSpan Hold, IReadOnlyList<int> Split)
{
    public override string ToString() =>
        $"at {At.TotalSeconds:0.0}s {Kind} target={Target} mode={Mode} hold={Hold.TotalSeconds:0.0}s split=[{string.Join(",", Split)}]";
}

/// <summary>
/// A seeded plan of faults: the same seed, duration, fault set and cluster size give the same steps. One fault at a
/// time, each held for 1-4 s (longer than an election timeout, so leaders change), with 0.5-2 s of calm between, the
/// first after a second of calm and the last healed before the run's end.
/// </summary>
public sealed record FaultSchedule(int Seed, IReadOnlyList<FaultStep> Steps)
{
    /// <summary>Every fault except <see cref="FaultKind.WipeAndRejoin"/> (see README, "Fault injection").</summary>
    public static readonly IReadOnlyList<FaultKind> Standard =
    [
        FaultKind.KillRestart, FaultKind.PauseResume, FaultKind.IsolateNode, FaultKind.IsolateLeader,
        FaultKind.MajorityMinoritySplit, FaultKind.LeaderCannotSend, FaultKind.LeaderCannotHear,
    ];

    public static FaultSchedule Generate(int seed, TimeSpan duration, IReadOnlyList<FaultKind> kinds, int nodes)
    {
        if (kinds.Count == 0) throw new ArgumentException("no fault kinds to choose from", nameof(kinds));
        var random = new Random(seed);
        var steps = new List<FaultStep>();
        var t = TimeSpan.FromSeconds(1);
        while (true)
        {
            var hold = TimeSpan.FromMilliseconds(random.Next(1_000, 4_000));
            if (t + hold > duration - TimeSpan.FromSeconds(1)) break;
            var kind = kinds[random.Next(kinds.Count)];
            var mode = random.Next(2) == 0 ? LinkRule.Drop : LinkRule.Cut;
            var split = Enumerable.Range(0, nodes).OrderBy(_ => random.Next()).ToList();
            steps.Add(new FaultStep(t, kind, random.Next(nodes), mode, hold, split));
            t += hold + TimeSpan.FromMilliseconds(random.Next(500, 2_000));
        }
        return new FaultSchedule(seed, steps);
    }

    public override string ToString() => $"seed {Seed}: " + string.Join("; ", Steps);
}
