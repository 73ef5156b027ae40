using RaftKv.Faults.Tests.Checking;
using RaftKv.Faults.Tests.Cluster;
using RaftKv.Faults.Tests.Relay;
using RaftKv.Faults.Tests.Workload;

namespace RaftKv.Faults.Tests.Faults;

/// <summary>One run: the seed, for how long faults are injected, which, and the cluster and workload.</summary>
public sealed record FaultRunOptions(int Seed, TimeSpan Duration, IReadOnlyList<FaultKind> Faults, int Nodes = 5, int Clients = 6)
{
    public WorkloadOptions Workload { get; init; } = new();

    /// <summary>Overrides the seeded schedule (the stale-read proof holds one partition for the whole run).</summary>
    public FaultSchedule? Schedule { get; init; }

    /// <summary>
    /// The deliberately broken read path, for proving the checker is not vacuous: every read is sent with
    /// ?level=none, half of them to <see cref="StaleReadNode"/>, and recorded as if linearizable.
    /// </summary>
    public bool StaleReads { get; init; }

    public int StaleReadNode { get; init; }

    /// <summary>Where histories go; a passing run's file is deleted unless <see cref="KeepHistory"/>.</summary>
    public string HistoryFolder { get; init; } = Path.Combine(Path.GetTempPath(), "raftkv-fault-histories");

    public bool KeepHistory { get; init; }
}

/// <summary>What a run found.</summary>
public sealed record FaultRunResult(
    bool Passed, int Seed, string Summary, string? HistoryPath, int Operations, int Acknowledged, int UnknownWrites,
    int OpsChecked, IReadOnlyDictionary<FaultKind, int> Faults)
{
    /// <summary>What crossed the relays: raft bytes forwarded and dropped, connections cut (proof the partitions bit).</summary>
    public (long Forwarded, long Dropped, long Cut) Relayed { get; init; }

    /// <summary>Snapshots the nodes installed from a leader (their logs say so): the catch-up path the faults exercised.</summary>
    public int SnapshotsInstalled { get; init; }

    public override string ToString() =>
        $"seed {Seed}: {(Passed ? "PASS" : "FAIL")}: {Operations} operations ({Acknowledged} acknowledged writes, {UnknownWrites} writes of unknown outcome), " +
        $"{OpsChecked} register operations checked; faults: {string.Join(", ", Faults.Select(f => $"{f.Key} x{f.Value}"))}; " +
        $"relays: {Relayed.Forwarded} bytes forwarded, {Relayed.Dropped} dropped, {Relayed.Cut} connections cut; {SnapshotsInstalled} snapshots installed from a leader\n{Summary}" +
        (HistoryPath is null ? "" : $"\nhistory kept: {HistoryPath}");
}

/// <summary>
/// Runs a Jepsen-style test: starts a cluster behind relays, runs the clients while the schedule's faults come and
/// go, heals everything, waits for the nodes to converge, reads every key from every node, and checks the history
/// (linearizability per key, no acknowledged write lost, every node holding the same values). The history file is
/// written before the check; it is kept when the run fails, and its path and the seed are in the result.
/// </summary>
public static class FaultRun
{
    public static async Task<FaultRunResult> RunAsync(FaultRunOptions options, TextWriter log)
    {
        var schedule = options.Schedule ?? FaultSchedule.Generate(options.Seed, options.Duration, options.Faults, options.Nodes);
        var history = new History();
        var path = Path.Combine(options.HistoryFolder, $"seed-{options.Seed}-{DateTime.UtcNow:yyyyMMdd-HHmmss}-{Environment.ProcessId}.json");
        var description = $"{options.Nodes} nodes, {options.Clients} clients, {options.Duration.TotalSeconds:0}s, {schedule}" + (options.StaleReads ? ", STALE READ PATH ON" : "");
        log.WriteLine($"fault run {description}");

        using var cluster = new FaultCluster();
        var injector = new FaultInjector(cluster, history);
        var problems = new List<string>();
        string checkSummary;
        var opsChecked = 0;
        try
        {
            await cluster.StartAsync(options.Nodes);
            history.Note("cluster up");

            using var stop = new CancellationTokenSource();
            var clients = Enumerable.Range(0, options.Clients)
                .Select(i => new ClientWorker(i, history, () => Targets(cluster, options), WorkerOptions(options), new Random(options.Seed * 1_000 + i)))
                .ToList();
            var workers = clients.Select(c => Task.Run(() => c.RunAsync(stop.Token))).ToList();
            try
            {
                await injector.RunAsync(schedule, CancellationToken.None);
                var left = options.Duration - TimeSpan.FromMicroseconds(history.Now() - history.Events[0].At);
                if (left > TimeSpan.Zero) await Task.Delay(left);
            }
            finally
            {
                stop.Cancel();
                try
                {
                    await Task.WhenAll(workers);
                }
                finally
                {
                    foreach (var c in clients) c.Dispose();
                }
            }

            history.Note("healing");
            await cluster.HealAllAsync();
            await cluster.WaitConvergedAsync(TimeSpan.FromSeconds(60));
            history.Note("converged");
            var finalValues = await FinalReadsAsync(cluster, history, options.Workload, problems);

            history.Save(path, options.Seed, description);
            var report = HistoryChecker.Check(history.Ops);
            opsChecked = report.OpsChecked;
            if (!report.Passed) problems.Add(report.ToString());
            problems.AddRange(AcknowledgedWrites.FindLost(history.Ops, finalValues));
            checkSummary = report.Summary;
        }
        catch (Exception e)
        {
            problems.Add($"the run failed: {e.Message}\n{e.StackTrace}");
            checkSummary = "not checked";
            history.Save(path, options.Seed, description);
        }

        var ops = history.Ops;
        var passed = problems.Count == 0;
        if (!passed)
        {
            var logPath = Path.ChangeExtension(path, ".logs.txt");
            await File.WriteAllTextAsync(logPath, cluster.Logs());
            log.WriteLine($"FAILED: seed {options.Seed}; history: {path}; node logs: {logPath}");
        }
        else if (!options.KeepHistory)
        {
            File.Delete(path);
        }
        var summary = passed ? checkSummary : string.Join("\n", problems.Take(20));
        return new FaultRunResult(passed, options.Seed, summary, passed && !options.KeepHistory ? null : path, ops.Count,
            ops.Count(o => o.Kind == OpKind.Write && o.Outcome == OpOutcome.Ok), ops.Count(o => o.Kind == OpKind.Write && o.Outcome == OpOutcome.Unknown),
            opsChecked, injector.Injected)
        {
            Relayed = (cluster.Network.BytesForwarded, cluster.Network.BytesDropped, cluster.Network.ConnectionsCut),
            SnapshotsInstalled = CountLines(cluster.Logs(), "installed snapshot "),
        };
    }

    private static int CountLines(string text, string needle)
    {
        var count = 0;
        for (var i = text.IndexOf(needle, StringComparison.Ordinal); i >= 0; i = text.IndexOf(needle, i + needle.Length, StringComparison.Ordinal)) count++;
        return count;
    }

    private static WorkloadOptions WorkerOptions(FaultRunOptions options) =>
        options.StaleReads ? options.Workload with { ReadLevel = "none" } : options.Workload;

    /// <summary>The nodes a client may pick: all of them (a killed node refuses, a paused one times out, as in life).</summary>
    private static IReadOnlyList<(string, Uri)> Targets(FaultCluster cluster, FaultRunOptions options)
    {
        var all = cluster.Names.Select(n => (n, cluster.Nodes[n].BaseUri)).ToList();
        if (!options.StaleReads) return all;
        // The broken read path: half the picks go to the node the schedule cuts off.
        var stale = all[options.StaleReadNode];
        return [.. all, .. Enumerable.Repeat(stale, all.Count)];
    }

    /// <summary>
    /// Every key read from every node, linearizably (recorded in the history: the checker sees the end state too),
    /// then at level none once more: every node must hold the same value. Returns each key's value.
    /// </summary>
    private static async Task<Dictionary<string, string?>> FinalReadsAsync(FaultCluster cluster, History history, WorkloadOptions workload, List<string> problems)
    {
        using var reader = new ClientWorker(ClientWorker.FinalReader, history, () => [], workload, new Random(0));
        var final = new Dictionary<string, string?>();
        foreach (var key in workload.KeyNames)
        {
            foreach (var name in cluster.Names)
            {
                var uri = cluster.Nodes[name].BaseUri;
                // A healed cluster may still hold one election (a node back from a pause); give it a few seconds.
                var (answered, value) = (false, (string?)null);
                var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(15);
                while (!answered && DateTime.UtcNow < deadline)
                {
                    (answered, value) = await reader.ReadAsync(name, uri, key, "linearizable");
                    if (!answered) await Task.Delay(250);
                }
                if (!answered)
                {
                    problems.Add($"final read of {key} from {name} got no answer within 15 s of healing");
                    continue;
                }
                final[key] = value;
                var (localAnswered, local) = await reader.ReadAsync(name, uri, key, "none", record: false);
                if (localAnswered && local != value) problems.Add($"after convergence {name} holds {key}={local ?? "(missing)"} locally but {value ?? "(missing)"} linearizably");
            }
        }
        var diverged = workload.KeyNames.Where(k => history.Ops.Where(o => o.Client == ClientWorker.FinalReader && o.Kind == OpKind.Read && o.Outcome == OpOutcome.Ok && o.ReadKey == k).Select(o => o.Values[k]).Distinct().Count() > 1);
        foreach (var k in diverged) problems.Add($"nodes disagree on {k} after healing");
        return final;
    }
}
