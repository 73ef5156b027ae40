using System.Net;
using System.Text.Json;

namespace RaftKv.TestSupport;

/// <summary>
/// Real raftkvd processes in a temp folder, for the test projects that need a running cluster. Every process is
/// killed by its PID when the cluster is disposed, whatever happened. Waits poll with a deadline; none sleeps for
/// correctness.
/// </summary>
public class RaftkvdCluster(string folder) : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), folder, Guid.NewGuid().ToString("N"));
    private readonly List<RaftkvdProcess> _all = [];

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(15) };
    public Dictionary<string, RaftkvdProcess> Nodes { get; } = [];

    /// <summary>Flags every node gets: the server's default timing, so a busy CI machine causes no spurious elections.</summary>
    public List<string> CommonArgs { get; } = ["--heartbeat-timeout", "100ms", "--election-timeout", "1s"];

    public IReadOnlyList<string> Endpoints => Nodes.Values.Select(n => n.HttpAddress).ToList();

    public string DataDir(string name) => Path.Combine(_root, name);

    public RaftkvdProcess Start(string name, string? join = null, IEnumerable<string>? extra = null, int? httpPort = null, int? raftPort = null)
    {
        var args = new List<string>(CommonArgs);
        if (join is not null) args.AddRange(["-join", join]);
        if (extra is not null) args.AddRange(extra);
        var p = RaftkvdProcess.Start(name, DataDir(name), args, httpPort, raftPort);
        _all.Add(p);
        Nodes[name] = p;
        if (httpPort is null && raftPort is null) _retryOnTakenPort[p] = args;
        return p;
    }

    // Nodes started on picked ports, with their flags: started again on new ports if a port was taken before they bound
    // it (raftkvd checks before writing anything, so the retry starts from the same empty data directory).
    private readonly Dictionary<RaftkvdProcess, List<string>> _retryOnTakenPort = [];

    /// <summary>Restarts a stopped node on its old ports and data, without -join.</summary>
    public RaftkvdProcess Restart(string name, IEnumerable<string>? extra = null)
    {
        var old = Nodes[name];
        return Start(name, null, extra, old.HttpPort, old.RaftPort);
    }

    /// <summary>node0 founds the cluster; the others join it, as in hraftd's walkthrough.</summary>
    public async Task StartClusterAsync(int size, IEnumerable<string>? extra = null)
    {
        var first = await WaitReadyAsync(Start("node0", extra: extra));
        for (var i = 1; i < size; i++) Start("node" + i, first.HttpAddress, extra);
        foreach (var n in Nodes.Values.ToList()) await WaitReadyAsync(n);
        // Voters, not just members: a joiner is ready while still a non-voter being caught up, and a scenario that
        // kills or transfers to a node right then would find a cluster one voter short.
        await Eventually(async () => (await ClusterVotersAsync(first)).Count == size, $"{size} voters in the configuration");
    }

    /// <summary>Waits until the node answers /readyz; returns it, or the node that replaced it after a taken port.</summary>
    public async Task<RaftkvdProcess> WaitReadyAsync(RaftkvdProcess node, TimeSpan? timeout = null)
    {
        await Eventually(async () =>
        {
            if (node.ExitedOnTakenPort && _retryOnTakenPort.Remove(node, out var args) && Nodes[node.Name] == node)
            {
                var again = RaftkvdProcess.Start(node.Name, DataDir(node.Name), args);
                _all.Add(again);
                Nodes[node.Name] = again;
                _retryOnTakenPort[again] = args;
                node = again;
            }
            if (node.HasExited) throw new InvalidOperationException($"{node.Name} exited:\n{node.Output}");
            using var r = await Http.GetAsync(new Uri(node.BaseUri, "/readyz"));
            return r.StatusCode == HttpStatusCode.OK;
        }, $"{node.Name} ready", timeout);
        return node;
    }

    public Task<JsonElement> StatsAsync(RaftkvdProcess node) => GetJsonAsync(node, "/raft/stats");

    public Task<JsonElement> StatusAsync(RaftkvdProcess node) => GetJsonAsync(node, "/status");

    public async Task<List<string>> ClusterServersAsync(RaftkvdProcess node)
    {
        var cluster = await GetJsonAsync(node, "/raft/cluster");
        return cluster.GetProperty("servers").EnumerateArray().Select(s => s.GetProperty("id").GetString()!).ToList();
    }

    /// <summary>The voters of the configuration as <paramref name="node"/> sees it (ids).</summary>
    public async Task<List<string>> ClusterVotersAsync(RaftkvdProcess node)
    {
        var cluster = await GetJsonAsync(node, "/raft/cluster");
        return cluster.GetProperty("servers").EnumerateArray()
            .Where(s => s.GetProperty("state").GetString() != "NonVoter")
            .Select(s => s.GetProperty("id").GetString()!).ToList();
    }

    private async Task<JsonElement> GetJsonAsync(RaftkvdProcess node, string path)
    {
        var text = await Http.GetStringAsync(new Uri(node.BaseUri, path));
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    /// <summary>The running node that says it leads (polling until one does).</summary>
    public async Task<RaftkvdProcess> LeaderAsync(TimeSpan? timeout = null)
    {
        RaftkvdProcess? leader = null;
        await Eventually(async () =>
        {
            foreach (var n in Nodes.Values.Where(n => !n.HasExited))
            {
                try
                {
                    if ((await StatsAsync(n)).GetProperty("state").GetString() == "Leader")
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
        }, "a leader", timeout);
        return leader!;
    }

    public async Task<RaftkvdProcess> FollowerAsync()
    {
        var leader = await LeaderAsync();
        return Nodes.Values.First(n => n != leader && !n.HasExited);
    }

    /// <summary>
    /// Polls <paramref name="condition"/> until it holds or the deadline passes. Connection errors and time-outs count
    /// as "not yet", as do the exceptions <paramref name="transient"/> accepts.
    /// </summary>
    public static async Task Eventually(Func<Task<bool>> condition, string what, TimeSpan? timeout = null, Func<Exception, bool>? transient = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        Exception? last = null;
        while (DateTime.UtcNow < deadline)
        {
            try
            {
                if (await condition()) return;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException || transient?.Invoke(e) == true)
            {
                last = e;
            }
            await Task.Delay(50);
        }
        throw new TimeoutException($"timed out waiting for {what}" + (last is null ? "" : $" (last error: {last.Message})"));
    }

    public string Logs() => string.Join("\n", _all.Select(p => $"----- {p.Name} (pid {p.Pid}) -----\n{p.Output}"));

    /// <summary>Kills every process started (by PID) and deletes the folder; a subclass that owns more releases it too.</summary>
    public virtual void Dispose()
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
        GC.SuppressFinalize(this);
    }
}
