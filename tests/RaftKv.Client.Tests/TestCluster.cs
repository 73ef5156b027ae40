using System.Net;
using System.Text.Json;

namespace RaftKv.Client.Tests;

/// <summary>
/// Real raftkvd processes in a temp folder (adapted from the end-to-end tests' E2eCluster). Every process is killed by
/// PID when the cluster is disposed, whatever happened. All waits poll with a deadline; none sleeps for correctness.
/// </summary>
internal sealed class TestCluster : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "raftkv-client-tests", Guid.NewGuid().ToString("N"));
    private readonly List<RaftkvdProcess> _all = [];

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(5) };
    public Dictionary<string, RaftkvdProcess> Nodes { get; } = [];

    /// <summary>The server's defaults: a new leader within about two seconds of a kill, and no spurious elections on a busy CI machine.</summary>
    public List<string> CommonArgs { get; } = ["--heartbeat-timeout", "100ms", "--election-timeout", "1s"];

    public IReadOnlyList<string> Endpoints => Nodes.Values.Select(n => n.HttpAddress).ToList();

    public RaftkvdProcess Start(string name, string? join = null)
    {
        var args = new List<string>(CommonArgs);
        if (join is not null) args.AddRange(["-join", join]);
        var p = RaftkvdProcess.Start(name, Path.Combine(_root, name), args);
        _all.Add(p);
        Nodes[name] = p;
        return p;
    }

    /// <summary>node0 founds the cluster; the others join it.</summary>
    public async Task StartClusterAsync(int size)
    {
        try
        {
            var first = Start("node0");
            await WaitReadyAsync(first);
            for (var i = 1; i < size; i++) Start("node" + i, first.HttpAddress);
            foreach (var n in Nodes.Values) await WaitReadyAsync(n);
            await Eventually(async () => (await StatusAsync(first)).GetProperty("followers").GetArrayLength() == size - 1, $"{size} members");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    public async Task WaitReadyAsync(RaftkvdProcess node)
    {
        await Eventually(async () =>
        {
            if (node.HasExited) throw new InvalidOperationException($"{node.Name} exited:\n{node.Output}");
            using var r = await Http.GetAsync(new Uri(node.BaseUri, "/readyz"));
            return r.StatusCode == HttpStatusCode.OK;
        }, $"{node.Name} ready");
    }

    public async Task<JsonElement> StatusAsync(RaftkvdProcess node)
    {
        var text = await Http.GetStringAsync(new Uri(node.BaseUri, "/status"));
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>The node that says it leads (polling until one does).</summary>
    public async Task<RaftkvdProcess> LeaderAsync()
    {
        RaftkvdProcess? leader = null;
        await Eventually(async () =>
        {
            foreach (var n in Nodes.Values.Where(n => !n.HasExited))
            {
                try
                {
                    if ((await StatusAsync(n)).GetProperty("state").GetString() == "Leader")
                    {
                        leader = n;
                        return true;
                    }
                }
                catch (HttpRequestException)
                {
                }
            }
            return false;
        }, "a leader");
        return leader!;
    }

    public async Task<RaftkvdProcess> FollowerAsync()
    {
        var leader = await LeaderAsync();
        return Nodes.Values.First(n => n != leader && !n.HasExited);
    }

    public static async Task Eventually(Func<Task<bool>> condition, string what, TimeSpan? timeout = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (await condition()) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or RaftKvException)
            {
                last = e;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"timed out waiting for {what}" + (last is null ? "" : $" (last error: {last.Message})"));
    }

    public string Logs() => string.Join("\n", _all.Select(p => $"----- {p.Name} (pid {p.Pid}) -----\n{p.Output}"));

    public void Dispose()
    {
        foreach (var p in _all) p.Dispose();
        Http.Dispose();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

/// <summary>One three-node cluster shared by the tests that do not break it (each finds the leader afresh).</summary>
public sealed class SharedCluster : IAsyncLifetime
{
    internal TestCluster Cluster { get; } = new();

    public Task InitializeAsync() => Cluster.StartClusterAsync(3);

    public Task DisposeAsync()
    {
        Cluster.Dispose();
        return Task.CompletedTask;
    }
}

[CollectionDefinition(Name)]
public sealed class SharedClusterCollection : ICollectionFixture<SharedCluster>
{
    public const string Name = "shared three-node cluster";
}
