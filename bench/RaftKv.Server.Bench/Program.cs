using System.Globalization;
using RaftKv.Load;
using RaftKv.Client;
using RaftKv.Server.Bench;

// Usage: RaftKv.Server.Bench [--seconds N] [--connections 1,16,64] [--no-etcd] [--single] [--baseline path/raftkvd.dll] [--rounds N]
// The load is raftkv bench's engine (LoadRunner), the same for every cluster. --single also measures one raftkvd node
// alone: the same path minus replication, so an upper bound for the three-node cluster on this machine. --baseline
// measures another build of raftkvd first (before a change, say) and compares against it instead of etcd. --rounds
// measures every cluster N times, alternating, and reports each load's median round: noise on a shared machine
// then hits both columns alike.
var seconds = 10;
var connections = new[] { 1, 16, 64 };
var withEtcd = true;
var withSingle = false;
string? baseline = null;
var rounds = 1;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--seconds": seconds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--connections": connections = args[++i].Split(',').Select(s => int.Parse(s, CultureInfo.InvariantCulture)).ToArray(); break;
        case "--no-etcd": withEtcd = false; break;
        case "--single": withSingle = true; break;
        case "--baseline": baseline = Path.GetFullPath(args[++i]); break;
        case "--rounds": rounds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}; usage: [--seconds N] [--connections 1,16,64] [--no-etcd] [--single] [--baseline path/raftkvd.dll] [--rounds N]");
            return 2;
    }
}

var root = Path.Combine(Path.GetTempPath(), "raftkv-server-bench-" + Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(root);
var duration = TimeSpan.FromSeconds(seconds);
const int ReadKeys = 1000;
var readers = connections.Max();
// Rows of the final table, in order: (label, raftkv report, etcd report).
var loads = connections.Select(n => $"writes c={n}").Append($"linearizable reads c={readers}").ToList();
// Every round's report of each (cluster, load); the summary shows the median round.
var measured = new Dictionary<(string Target, string Load), List<LoadReport>>();
try
{
    if (baseline is not null && !File.Exists(baseline))
    {
        Console.Error.WriteLine($"--baseline {baseline}: no such file (build the other version with `dotnet build -c Release src/RaftKv.Server -o DIR` and pass DIR/raftkvd.dll)");
        return 2;
    }
    // Factories: each round starts every cluster afresh, with data directories of its own.
    var targets = new List<Func<int, ITarget>>();
    if (baseline is not null) targets.Add(r => new RaftKvTarget(Path.Combine(root, "r" + r), nodes: 3, baseline, "baseline"));
    targets.Add(r => new RaftKvTarget(Path.Combine(root, "r" + r), nodes: 3));
    if (withSingle) targets.Add(r => new RaftKvTarget(Path.Combine(root, "r" + r), nodes: 1));
    var etcd = withEtcd && baseline is null ? Processes.FindOnPath("etcd") : null;
    if (etcd is not null) targets.Add(r => new EtcdTarget(Path.Combine(root, "r" + r), etcd));
    else if (withEtcd) Console.WriteLine("etcd not found on PATH (install Debian's etcd-server package to compare); measuring raftkv alone");

    var names = new List<string>();
    for (var round = 0; round < rounds; round++)
    {
        if (rounds > 1) Console.WriteLine($"round {round + 1} of {rounds}");
        foreach (var make in targets)
        {
            var target = make(round);
            if (!names.Contains(target.Name)) names.Add(target.Name);
            using (target)
            {
                Console.WriteLine($"starting {target.Description} cluster on loopback...");
                await target.StartAsync();
                var bench = target.CreateLoadTarget();
                await bench.PrepareAsync(TimeSpan.FromSeconds(30));
                foreach (var n in connections)
                {
                    // Distinct keys (every write a new key), 100-byte values, write-only.
                    var report = await LoadRunner.RunAsync(bench, new LoadOptions
                    {
                        Clients = n, Duration = duration, Distinct = true, KeyPrefix = $"c{n}-", ValueSize = 100, WritePercent = 100,
                    });
                    Record(target.Name, $"writes c={n}", report);
                    Print(target.Name, $"writes c={n}", report);
                }
                // Reads need keys that exist: write ReadKeys of them first (not measured), then read them at random.
                var fill = await LoadRunner.RunAsync(bench, new LoadOptions
                {
                    Clients = 16, Requests = ReadKeys, Distinct = true, KeyPrefix = "r-", ValueSize = 100, WritePercent = 100,
                });
                if (fill.ErrorCount > 0) Console.WriteLine($"  (filling the read keys: {fill.ErrorCount} errors)");
                var reads = await LoadRunner.RunAsync(bench, new LoadOptions
                {
                    Clients = readers, Duration = duration, Keys = ReadKeys, KeyPrefix = "r-", WritePercent = 0, ReadLevel = ReadLevel.Linearizable,
                });
                Record(target.Name, loads[^1], reads);
                Print(target.Name, loads[^1], reads);
            }
        }
    }

    Console.WriteLine();
    // The ratios compare raftkv with the baseline build when there is one, else with etcd.
    var other = baseline is not null ? "baseline" : "etcd";
    Console.WriteLine($"summary (same machine, same run, {seconds}s per load, median of {rounds} round(s); latencies in ms; ratios are raftkv/{other}:");
    Console.WriteLine(" ops/s above 1 = raftkv faster, p50/p99 below 1 = raftkv quicker):");
    Console.WriteLine();
    var results = measured.ToDictionary(kv => kv.Key, kv => kv.Value.OrderBy(r => r.OpsPerSecond).ElementAt(kv.Value.Count / 2));
    var width = Math.Max(13, names.Max(n => n.Length) + 6);
    var compared = names.Contains(other);
    var header = $"  {"load",-26}" + string.Concat(names.Select(n => $" | {(n + " ops/s").PadLeft(width)} {"p50",7} {"p99",7} {"errors",6}"));
    if (compared) header += $" | {"ops/s",6} {"p50",5} {"p99",5}";
    Console.WriteLine(header);
    Console.WriteLine("  " + new string('-', header.Length - 2));
    foreach (var load in loads)
    {
        var line = $"  {load,-26}";
        foreach (var name in names)
        {
            var r = results.GetValueOrDefault((name, load));
            line += r is null ? $" | {"-".PadLeft(width)} {"-",7} {"-",7} {"-",6}"
                : string.Create(CultureInfo.InvariantCulture, $" | {r.OpsPerSecond.ToString("N0", CultureInfo.InvariantCulture).PadLeft(width)} {P(r, 50),7:F2} {P(r, 99),7:F2} {r.ErrorCount,6}");
        }
        if (compared && results.GetValueOrDefault(("raftkv", load)) is { } a && results.GetValueOrDefault((other, load)) is { } b)
        {
            line += string.Create(CultureInfo.InvariantCulture,
                $" | {Ratio(a.OpsPerSecond, b.OpsPerSecond),6} {Ratio(P(a, 50), P(b, 50)),5} {Ratio(P(a, 99), P(b, 99)),5}");
        }
        Console.WriteLine(line);
    }
    return 0;
}
finally
{
    try
    {
        Directory.Delete(root, recursive: true);
    }
    catch (IOException)
    {
    }
}

void Record(string target, string load, LoadReport report)
{
    if (!measured.TryGetValue((target, load), out var list)) measured[(target, load)] = list = [];
    list.Add(report);
}

static double P(LoadReport r, double percentile) => r.Latency.ValueAtPercentile(percentile) / 1000.0;

static string Ratio(double a, double b) => b > 0 && a > 0 ? (a / b).ToString("F2", CultureInfo.InvariantCulture) : "-";

static void Print(string target, string load, LoadReport r) =>
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
        $"  {target,-6} {load,-26} {r.OpsPerSecond,10:N0}/s  p50 {P(r, 50),7:F2} ms  p99 {P(r, 99),7:F2} ms  max {r.Latency.Max / 1000.0,7:F2} ms  errors {r.ErrorCount}"));
