using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging.Abstractions;
using RaftKv.Node;
using RaftKv.Node.Transport;
using RaftKv.Routing.Bench;
using RaftKv.Server;

// Usage: RaftKv.Routing.Bench [--seconds N] [--clients C] [--inmem]
// Three nodes in this process, real TCP raft links on loopback, each behind raftkvd's HTTP app. Three phases of N
// seconds each: no load (the baseline), a follower flooded over HTTP with writes it forwards to the leader (raftkvd's
// way), and the same follower flooded through the node API (an embedded program's way: forwarded over the raft
// transport's call connections). For each phase it prints the gaps between heartbeats that follower received.
var seconds = 10;
var clients = 32;
var inMemory = false;
for (var i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--seconds": seconds = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--clients": clients = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
        case "--inmem": inMemory = true; break;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}; usage: [--seconds N] [--clients C] [--inmem]");
            return 2;
    }
}

var root = Path.Combine(Path.GetTempPath(), "raftkv-routing-bench-" + Guid.NewGuid().ToString("N"));
var nodes = new List<(KvNode Node, HeartbeatClock Clock, WebApplication App, string Http)>();
try
{
    for (var n = 1; n <= 3; n++)
    {
        var id = "n" + n;
        var http = "127.0.0.1:" + FreePort();
        HeartbeatClock? clock = null;
        var options = new NodeOptions
        {
            Id = id,
            DataDirectory = Path.Combine(root, id),
            InMemory = inMemory,
            RaftBindAddress = "127.0.0.1:" + FreePort(),
            HttpAdvertiseAddress = http,
            Bootstrap = n == 1,
            // raftkvd's settings: forwarding is plugged in by its HTTP app; requests complete on the loop.
            ForwardToLeader = false,
            InlineCompletions = true,
        };
        var node = await KvNode.StartAsync(options, NullLoggerFactory.Instance, log => clock = new HeartbeatClock(TransportFactory.CreateTcp(options, log)),
            CancellationToken.None);
        var app = ServerApp.Build(node, new ServerOptions { HttpAddress = http });
        await app.StartAsync();
        nodes.Add((node, clock!, app, http));
        if (n == 1) await WaitForLeaderAsync(node, "n1");
        else await nodes[0].Node.JoinAsync(new JoinRequest(id, options.RaftAddress, http));
    }
    var leaderId = (await nodes[0].Node.GetStatusAsync()).LeaderId!;
    var follower = nodes.First(x => x.Node.Id != leaderId);
    Console.WriteLine($"3 nodes ({(inMemory ? "in-memory log" : "log on disk")}), leader {leaderId}; flooding follower {follower.Node.Id} with {clients} clients, {seconds}s per phase");
    Console.WriteLine();
    Console.WriteLine($"{"phase",-28} {"writes/s",9} {"errors",7} {"beats",6} {"gap p50",8} {"p90",6} {"p99",6} {"max",6}  (ms)  term");

    var duration = TimeSpan.FromSeconds(seconds);
    await PhaseAsync("baseline (no load)", _ => Task.FromResult(false));
    using var httpClient = new HttpClient(new SocketsHttpHandler { MaxConnectionsPerServer = clients, UseProxy = false }) { Timeout = TimeSpan.FromSeconds(10) };
    var value = new string('v', 100);
    await PhaseAsync("forwarded over HTTP", async key =>
    {
        using var content = new StringContent($"{{\"{key}\":\"{value}\"}}", Encoding.UTF8, "application/json");
        using var response = await httpClient.PostAsync($"http://{follower.Http}/key", content);
        return response.IsSuccessStatusCode;
    });
    ((RaftKv.Node.Routing.IRoutedNode)follower.Node).ForwardThrough(new RaftKv.Node.Routing.TransportForwarder(follower.Node.Transport));
    await PhaseAsync("forwarded over raft calls", async key =>
    {
        await follower.Node.SetAsync([KeyValuePair.Create(key, value)]);
        return true;
    });

    async Task PhaseAsync(string name, Func<string, Task<bool>> write)
    {
        follower.Clock.TakeArrivals();
        using var stop = new CancellationTokenSource(duration);
        long written = 0, failed = 0;
        var started = Stopwatch.GetTimestamp();
        var workers = Enumerable.Range(0, name.StartsWith("baseline", StringComparison.Ordinal) ? 0 : clients).Select(c => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                try
                {
                    if (await write($"{name[0]}{c}-{i}")) Interlocked.Increment(ref written);
                    else Interlocked.Increment(ref failed);
                }
                catch (Exception e) when (e is NodeException or HttpRequestException or TaskCanceledException)
                {
                    Interlocked.Increment(ref failed);
                }
            }
        })).ToList();
        try
        {
            await Task.Delay(duration, CancellationToken.None);
        }
        finally
        {
            stop.Cancel();
            await Task.WhenAll(workers);
        }
        var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
        var arrivals = follower.Clock.TakeArrivals();
        var gaps = arrivals.Zip(arrivals.Skip(1), (a, b) => (b - a) * 1000.0 / Stopwatch.Frequency).Order().ToArray();
        var status = await follower.Node.GetStatusAsync();
        Console.WriteLine($"{name,-28} {written / elapsed,9:0} {failed,7} {arrivals.Length,6} {Pct(gaps, 0.50),8:0.0} {Pct(gaps, 0.90),6:0.0} {Pct(gaps, 0.99),6:0.0} {(gaps.Length > 0 ? gaps[^1] : double.NaN),6:0.0}        {status.Term}");
    }
}
finally
{
    foreach (var (node, _, app, _) in nodes)
    {
        await app.StopAsync();
        await app.DisposeAsync();
        await node.DisposeAsync();
    }
    try
    {
        Directory.Delete(root, recursive: true);
    }
    catch (IOException)
    {
    }
}
return 0;

static double Pct(double[] sorted, double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];

static int FreePort()
{
    using var listener = new TcpListener(IPAddress.Loopback, 0);
    listener.Start();
    return ((IPEndPoint)listener.LocalEndpoint).Port;
}

static async Task WaitForLeaderAsync(KvNode node, string id)
{
    var deadline = Stopwatch.GetTimestamp() + 30 * Stopwatch.Frequency;
    while ((await node.GetStatusAsync()).LeaderId != id)
    {
        if (Stopwatch.GetTimestamp() > deadline) throw new TimeoutException($"{id} did not become leader");
        await Task.Delay(20);
    }
}
