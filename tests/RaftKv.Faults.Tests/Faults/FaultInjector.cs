using System.Diagnostics;
using RaftKv.Faults.Tests.Cluster;
using RaftKv.Faults.Tests.Relay;
using RaftKv.Faults.Tests.Workload;

namespace RaftKv.Faults.Tests.Faults;

/// <summary>Plays a <see cref="FaultSchedule"/> against a <see cref="FaultCluster"/>, noting each fault in the history.</summary>
public sealed class FaultInjector(FaultCluster cluster, History history)
{
    /// <summary>How many faults of each kind were injected (the run's report says which faults it saw).</summary>
    public Dictionary<FaultKind, int> Injected { get; } = [];

    /// <summary>Applies each step at its time, holds it, heals it; returns when the last one is healed or <paramref name="stop"/> fires.</summary>
    public async Task RunAsync(FaultSchedule schedule, CancellationToken stop)
    {
        var clock = Stopwatch.StartNew();
        foreach (var step in schedule.Steps)
        {
            var wait = step.At - clock.Elapsed;
            if (wait > TimeSpan.Zero) await Task.Delay(wait, stop);
            var heal = await ApplyAsync(step);
            Injected[step.Kind] = Injected.GetValueOrDefault(step.Kind) + 1;
            try
            {
                await Task.Delay(step.Hold, stop);
            }
            finally
            {
                await heal();
            }
        }
    }

    /// <summary>Starts one fault; returns what ends it.</summary>
    private async Task<Func<Task>> ApplyAsync(FaultStep step)
    {
        var names = cluster.Names;
        var target = names[step.Target];
        switch (step.Kind)
        {
            case FaultKind.KillRestart:
                cluster.Kill(target);
                history.Note($"kill -9 {target}");
                return () =>
                {
                    cluster.Restart(target);
                    history.Note($"restart {target}");
                    return Task.CompletedTask;
                };
            case FaultKind.PauseResume:
                await cluster.PauseAsync(target);
                history.Note($"SIGSTOP {target}");
                return async () =>
                {
                    await cluster.ResumeAsync(target);
                    history.Note($"SIGCONT {target}");
                };
            case FaultKind.WipeAndRejoin:
                cluster.WipeAndRejoin(target);
                history.Note($"wipe {target} and rejoin");
                return () => Task.CompletedTask;
        }

        var aimsAtLeader = step.Kind is FaultKind.IsolateLeader or FaultKind.LeaderCannotSend or FaultKind.LeaderCannotHear;
        var leader = aimsAtLeader ? await cluster.ProbeLeaderAsync() ?? target : target;
        var others = names.Where(n => n != leader).ToList();
        var links = step.Kind switch
        {
            FaultKind.IsolateNode or FaultKind.IsolateLeader => others.SelectMany(o => new[] { (leader, o), (o, leader) }).ToList(),
            FaultKind.LeaderCannotSend => others.Select(o => (leader, o)).ToList(),
            FaultKind.LeaderCannotHear => others.Select(o => (o, leader)).ToList(),
            FaultKind.MajorityMinoritySplit => SplitLinks(names, step.Split),
            _ => throw new ArgumentOutOfRangeException(nameof(step), step.Kind, "not a network fault"),
        };
        foreach (var (from, to) in links) cluster.Network.Set(from, to, step.Mode);
        history.Note($"{step.Kind}{(aimsAtLeader ? $" (the leader was {leader})" : "")}: {cluster.Network.Describe()}");
        return () =>
        {
            cluster.Network.HealAll();
            history.Note($"heal {step.Kind}");
            return Task.CompletedTask;
        };
    }

    private static List<(string, string)> SplitLinks(IReadOnlyList<string> names, IReadOnlyList<int> order)
    {
        var minority = order.Take((names.Count - 1) / 2).Select(i => names[i]).ToList();
        var majority = names.Except(minority).ToList();
        return minority.SelectMany(m => majority.SelectMany(j => new[] { (m, j), (j, m) })).ToList();
    }
}
