using System.Text;
using System.Text.Json;

namespace RaftKv.Server.Bench;

/// <summary>A 3-node cluster under test: how to start it and how to write and read one key.</summary>
internal interface ITarget : IDisposable
{
    string Name { get; }
    Task StartAsync();
    Task<bool> WriteAsync(HttpClient client, string key, string value);
    Task<bool> ReadAsync(HttpClient client, string key);
}

/// <summary>Three raftkvd processes with data on disk (fsync on), the first bootstrapping, the others joining it.</summary>
internal sealed class RaftKvTarget(string root) : ITarget
{
    private readonly Processes _processes = new();
    private readonly List<string> _http = [];
    private string _leader = "";

    public string Name => "raftkv";

    public async Task StartAsync()
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "raftkvd.dll");
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        for (var i = 0; i < 3; i++)
        {
            var http = $"127.0.0.1:{Processes.FreePort()}";
            var raft = $"127.0.0.1:{Processes.FreePort()}";
            var args = new List<string> { dll, "-id", "node" + i, "-haddr", http, "-raddr", raft };
            if (i > 0) args.AddRange(["-join", _http[0]]);
            args.Add(Path.Combine(root, "raftkv-node" + i));
            _processes.Start("dotnet", args);
            _http.Add(http);
            var url = $"http://{http}/readyz";
            await Processes.WaitUntil(async () => (await probe.GetAsync(url)).IsSuccessStatusCode, TimeSpan.FromSeconds(30), "raftkvd node" + i);
        }
        // Send the load straight to the leader, as etcd's clients do: forwarding is measured by the tests, not here.
        await Processes.WaitUntil(async () =>
        {
            foreach (var h in _http)
            {
                using var doc = JsonDocument.Parse(await probe.GetStringAsync($"http://{h}/raft/stats"));
                if (doc.RootElement.GetProperty("state").GetString() == "Leader")
                {
                    _leader = h;
                    return true;
                }
            }
            return false;
        }, TimeSpan.FromSeconds(30), "a raftkv leader");
    }

    public async Task<bool> WriteAsync(HttpClient client, string key, string value)
    {
        using var body = new StringContent($"{{\"{key}\":\"{value}\"}}", Encoding.UTF8, "application/json");
        using var r = await client.PostAsync($"http://{_leader}/key", body);
        return r.IsSuccessStatusCode;
    }

    public async Task<bool> ReadAsync(HttpClient client, string key)
    {
        using var r = await client.GetAsync($"http://{_leader}/key/{key}?level=linearizable");
        return r.IsSuccessStatusCode;
    }

    public void Dispose() => _processes.Dispose();
}

/// <summary>Three etcd members (Debian's etcd-server package) on loopback, driven through etcd's JSON gateway.</summary>
internal sealed class EtcdTarget(string root, string etcd) : ITarget
{
    private readonly Processes _processes = new();
    private readonly List<string> _client = [];
    private string _leader = "";

    public string Name => "etcd";

    public async Task StartAsync()
    {
        var peers = Enumerable.Range(0, 3).Select(_ => $"http://127.0.0.1:{Processes.FreePort()}").ToList();
        var clients = Enumerable.Range(0, 3).Select(_ => $"http://127.0.0.1:{Processes.FreePort()}").ToList();
        var initial = string.Join(",", peers.Select((p, i) => $"etcd{i}={p}"));
        for (var i = 0; i < 3; i++)
        {
            _processes.Start(etcd,
            [
                "--name", "etcd" + i, "--data-dir", Path.Combine(root, "etcd" + i),
                "--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
                "--listen-client-urls", clients[i], "--advertise-client-urls", clients[i],
                "--initial-cluster", initial, "--initial-cluster-state", "new", "--initial-cluster-token", "raftkv-bench",
                "--log-level", "error",
            ]);
            _client.Add(clients[i]);
        }
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        await Processes.WaitUntil(async () =>
        {
            foreach (var c in _client)
            {
                using var r = await probe.PostAsync(c + "/v3/maintenance/status", new StringContent("{}"));
                if (!r.IsSuccessStatusCode) return false;
                using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
                var root = doc.RootElement;
                if (root.TryGetProperty("leader", out var leader) && root.GetProperty("header").GetProperty("member_id").GetString() == leader.GetString())
                    _leader = c;
            }
            return _leader.Length > 0;
        }, TimeSpan.FromSeconds(30), "an etcd leader");
    }

    private static string B64(string s) => Convert.ToBase64String(Encoding.UTF8.GetBytes(s));

    public async Task<bool> WriteAsync(HttpClient client, string key, string value)
    {
        using var body = new StringContent($"{{\"key\":\"{B64(key)}\",\"value\":\"{B64(value)}\"}}", Encoding.UTF8, "application/json");
        using var r = await client.PostAsync(_leader + "/v3/kv/put", body);
        return r.IsSuccessStatusCode;
    }

    public async Task<bool> ReadAsync(HttpClient client, string key)
    {
        // Range requests are linearizable unless "serializable" is set.
        using var body = new StringContent($"{{\"key\":\"{B64(key)}\"}}", Encoding.UTF8, "application/json");
        using var r = await client.PostAsync(_leader + "/v3/kv/range", body);
        return r.IsSuccessStatusCode;
    }

    public void Dispose() => _processes.Dispose();
}
