using System.Diagnostics;
using Microsoft.Extensions.Logging;
using RaftKv.Raft;

namespace RaftKv.Node.Tests.Runtime;

/// <summary>Several <see cref="KvNode"/>s in one process on an <see cref="InProcessNetwork"/>, with data in temp folders.</summary>
internal sealed class NodeCluster : IAsyncDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "raftkv-node-tests", Guid.NewGuid().ToString("N"));

    public InProcessNetwork Network { get; } = new();
    public Dictionary<string, KvNode> Nodes { get; } = [];
    public Func<NodeOptions, NodeOptions> Configure { get; init; } = o => o;

    /// <summary>Where the nodes log (nowhere by default).</summary>
    public ILoggerFactory? LoggerFactory { get; init; }

    /// <summary>
    /// Ticks 1 s apart (heartbeat 2 s, election 3 s, requests 30 s): a request left waiting for the next tick instead
    /// of waking the loop shows as one taking a good part of a second.
    /// </summary>
    public static NodeOptions SlowTicks(NodeOptions o) => o with
    {
        HeartbeatTimeout = TimeSpan.FromSeconds(2),
        ElectionTimeout = TimeSpan.FromSeconds(3),
        RequestTimeout = TimeSpan.FromSeconds(30),
    };

    /// <summary>
    /// Makes <paramref name="times"/> requests one after another and describes those that took over half a second.
    /// With <see cref="SlowTicks"/>, a request that waits for the next tick instead of waking the loop does.
    /// </summary>
    public static async Task<List<string>> SlowRequestsAsync(int times, Func<int, Task> request)
    {
        var slow = new List<string>();
        for (var i = 0; i < times; i++)
        {
            var started = Stopwatch.GetTimestamp();
            await request(i);
            var took = Stopwatch.GetElapsedTime(started);
            if (took > TimeSpan.FromSeconds(0.5)) slow.Add($"request {i}: {took.TotalMilliseconds:0} ms");
        }
        return slow;
    }

    /// <summary>The raft address of node <paramref name="id"/> on the in-process network (host:port, as joins require).</summary>
    public static string RaftAddressOf(string id) => $"raft-{id}:12000";

    /// <summary>The HTTP address node <paramref name="id"/> advertises.</summary>
    public static string HttpAddressOf(string id) => $"http-{id}:11000";

    public NodeOptions OptionsFor(string id, bool bootstrap) => Configure(new NodeOptions
    {
        Id = id,
        DataDirectory = Path.Combine(_root, id),
        RaftBindAddress = RaftAddressOf(id),
        HttpAdvertiseAddress = HttpAddressOf(id),
        Bootstrap = bootstrap,
        // Quick enough for tests, slow enough that a busy CI machine does not cause spurious elections.
        HeartbeatTimeout = TimeSpan.FromMilliseconds(50),
        ElectionTimeout = TimeSpan.FromMilliseconds(800),
        RequestTimeout = TimeSpan.FromSeconds(10),
    });

    public async Task<KvNode> StartAsync(string id, bool bootstrap = false)
    {
        var options = OptionsFor(id, bootstrap);
        var node = await KvNode.StartAsync(options, LoggerFactory, _ => Network.Transport(options.RaftAddress), CancellationToken.None);
        Nodes[id] = node;
        return node;
    }

    public async Task StopAsync(string id)
    {
        if (Nodes.Remove(id, out var node)) await node.DisposeAsync();
    }

    /// <summary>Starts n1 as a new cluster and joins the others to it as voters.</summary>
    public async Task<KvNode> StartClusterAsync(int size)
    {
        var first = await StartAsync("n1", bootstrap: true);
        await WaitForLeaderAsync();
        for (var i = 2; i <= size; i++)
        {
            var id = "n" + i;
            await StartAsync(id);
            await (await LeaderAsync()).JoinAsync(new JoinRequest(id, RaftAddressOf(id), HttpAddressOf(id), Voter: true));
        }
        return first;
    }

    public async Task<KvNode> LeaderAsync()
    {
        var id = await WaitForLeaderAsync();
        return Nodes[id];
    }

    /// <summary>Waits (with a deadline) until some running node leads.</summary>
    public async Task<string> WaitForLeaderAsync(TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (DateTime.UtcNow < deadline)
        {
            foreach (var (id, node) in Nodes)
            {
                var s = await node.GetStatusAsync();
                if (s.Role == Role.Leader) return id;
            }
            await Task.Delay(20);
        }
        throw new TimeoutException("no leader elected");
    }

    /// <summary>Writes through whichever node leads, following leadership changes (as a client would).</summary>
    public async Task<ulong> SetOnLeaderAsync(params KeyValuePair<string, string>[] pairs)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(20);
        while (true)
        {
            try
            {
                return await (await LeaderAsync()).SetAsync(pairs);
            }
            catch (NodeException e) when (e.Kind is NodeErrorKind.NotLeader or NodeErrorKind.NoLeader or NodeErrorKind.NotApplied && DateTime.UtcNow < deadline)
            {
                await Task.Delay(20);
            }
        }
    }

    public static async Task Eventually(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(15));
        while (DateTime.UtcNow < deadline)
        {
            if (await condition()) return;
            await Task.Delay(20);
        }
        throw new TimeoutException("timed out waiting for: " + what);
    }

    public async ValueTask DisposeAsync()
    {
        foreach (var n in Nodes.Values) await n.DisposeAsync();
        Nodes.Clear();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
