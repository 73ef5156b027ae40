using System.Net;
using System.Text;
using System.Text.Json;

namespace RaftKv.EndToEnd.Tests;

/// <summary>Real raftkvd processes in a temp folder; every one is killed when the test ends, whatever happened.</summary>
internal sealed class E2eCluster : IDisposable
{
    private readonly string _root = Path.Combine(Path.GetTempPath(), "raftkv-e2e", Guid.NewGuid().ToString("N"));
    private readonly List<RaftkvdProcess> _all = [];

    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(15) };
    public Dictionary<string, RaftkvdProcess> Nodes { get; } = [];

    /// <summary>Flags every node in this cluster gets (timing tuned so tests move quickly).</summary>
    public List<string> CommonArgs { get; } = ["--heartbeat-timeout", "100ms", "--election-timeout", "1s"];

    public string DataDir(string name) => Path.Combine(_root, name);

    public RaftkvdProcess Start(string name, string? join = null, IEnumerable<string>? extra = null, int? httpPort = null, int? raftPort = null)
    {
        var args = new List<string>(CommonArgs);
        if (join is not null) args.AddRange(["-join", join]);
        if (extra is not null) args.AddRange(extra);
        var p = RaftkvdProcess.Start(name, DataDir(name), args, httpPort, raftPort);
        _all.Add(p);
        Nodes[name] = p;
        return p;
    }

    /// <summary>Restarts a stopped node on its old ports and data, without -join.</summary>
    public RaftkvdProcess Restart(string name, IEnumerable<string>? extra = null)
    {
        var old = Nodes[name];
        return Start(name, null, extra, old.HttpPort, old.RaftPort);
    }

    /// <summary>node0 founds the cluster; the others join it, as in hraftd's walkthrough.</summary>
    public async Task StartClusterAsync(int size, IEnumerable<string>? extra = null)
    {
        var first = Start("node0", extra: extra);
        await WaitReadyAsync(first);
        for (var i = 1; i < size; i++) Start("node" + i, first.HttpAddress, extra);
        foreach (var n in Nodes.Values) await WaitReadyAsync(n);
        await Eventually(async () => (await ClusterServersAsync(first)).Count == size, $"{size} servers in the configuration");
    }

    public async Task WaitReadyAsync(RaftkvdProcess node, TimeSpan? timeout = null)
    {
        await Eventually(async () =>
        {
            if (node.HasExited) throw new InvalidOperationException($"{node.Name} exited:\n{node.Output}");
            using var r = await Http.GetAsync(new Uri(node.BaseUri, "/readyz"));
            return r.StatusCode == HttpStatusCode.OK;
        }, $"{node.Name} ready", timeout);
    }

    public async Task<JsonElement> StatsAsync(RaftkvdProcess node)
    {
        var text = await Http.GetStringAsync(new Uri(node.BaseUri, "/raft/stats"));
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    public async Task<List<string>> ClusterServersAsync(RaftkvdProcess node)
    {
        var text = await Http.GetStringAsync(new Uri(node.BaseUri, "/raft/cluster"));
        using var doc = JsonDocument.Parse(text);
        return doc.RootElement.GetProperty("servers").EnumerateArray().Select(s => s.GetProperty("id").GetString()!).ToList();
    }

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

    public async Task<HttpResponseMessage> SetAsync(RaftkvdProcess node, string key, string value) =>
        await Http.PostAsync(new Uri(node.BaseUri, "/key"), new StringContent(JsonSerializer.Serialize(new Dictionary<string, string> { [key] = value }), Encoding.UTF8, "application/json"));

    public async Task<string?> GetAsync(RaftkvdProcess node, string key, string level = "linearizable")
    {
        using var r = await Http.GetAsync(new Uri(node.BaseUri, $"/key/{Uri.EscapeDataString(key)}?level={level}"));
        if (r.StatusCode == HttpStatusCode.NotFound) return null;
        r.EnsureSuccessStatusCode();
        using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
        return doc.RootElement.GetProperty(key).GetString();
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
            catch (HttpRequestException e)
            {
                last = e;
            }
            catch (TaskCanceledException e)
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
