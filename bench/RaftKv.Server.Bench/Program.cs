using RaftKv.Server.Bench;

// Usage: RaftKv.Server.Bench [--seconds N] [--connections 1,16,64] [--no-etcd]
var seconds = 10;
var connections = new[] { 1, 16, 64 };
var withEtcd = true;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--seconds": seconds = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        case "--connections": connections = args[++i].Split(',').Select(s => int.Parse(s, System.Globalization.CultureInfo.InvariantCulture)).ToArray(); break;
        case "--no-etcd": withEtcd = false; break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}; usage: [--seconds N] [--connections 1,16,64] [--no-etcd]");
            return 2;
    }
}

var root = Path.Combine(Path.GetTempPath(), "raftkv-server-bench-" + Guid.NewGuid().ToString("N"));
Directory.CreateDirectory(root);
var duration = TimeSpan.FromSeconds(seconds);
var value = new string('v', 100);
var results = new List<LoadResult>();
try
{
    var targets = new List<ITarget> { new RaftKvTarget(root) };
    var etcd = withEtcd ? Processes.FindOnPath("etcd") : null;
    if (etcd is not null) targets.Add(new EtcdTarget(root, etcd));
    else if (withEtcd) Console.WriteLine("etcd not found on PATH (install Debian's etcd-server package to compare); measuring raftkv alone");

    foreach (var target in targets)
    {
        using (target)
        {
            Console.WriteLine($"starting 3-node {target.Name} cluster on loopback...");
            await target.StartAsync();
            foreach (var n in connections)
            {
                // Distinct keys: every write is a new key, as the issue asks.
                var w = await LoadGenerator.RunAsync($"{target.Name} writes", n, duration,
                    (client, worker, i) => target.WriteAsync(client, $"c{n}w{worker}k{i}", value));
                results.Add(w);
                Print(w);
            }
            var readers = connections.Max();
            var r = await LoadGenerator.RunAsync($"{target.Name} linearizable reads", readers, duration,
                (client, worker, i) => target.ReadAsync(client, $"c{readers}w{worker}k{i % 100}"));
            results.Add(r);
            Print(r);
        }
    }
    Console.WriteLine();
    Console.WriteLine("summary (same machine, same run):");
    foreach (var r in results) Print(r);
    foreach (var raft in results.Where(r => r.Name.StartsWith("raftkv", StringComparison.Ordinal)))
    {
        var other = results.FirstOrDefault(e => e.Name == raft.Name.Replace("raftkv", "etcd", StringComparison.Ordinal) && e.Connections == raft.Connections);
        if (other is not null && other.PerSecond > 0)
            Console.WriteLine($"  {raft.Name,-28} c={raft.Connections,-3} raftkv/etcd = {raft.PerSecond / other.PerSecond:F2}x");
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

static void Print(LoadResult r) =>
    Console.WriteLine($"  {r.Name,-28} c={r.Connections,-3} {r.PerSecond,10:N0}/s  p50 {r.P50Ms,7:F2} ms  p99 {r.P99Ms,7:F2} ms  errors {r.Errors}");
