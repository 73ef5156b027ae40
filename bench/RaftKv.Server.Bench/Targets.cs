using System.Text.Json;
using RaftKv.Load;

namespace RaftKv.Server.Bench;

/// <summary>
/// A 3-node cluster under test: how to start it, and the load generator's target for it (raftkv bench's engine, which
/// finds the leader and sends the requests).
/// </summary>
internal interface ITarget : IDisposable
{
    /// <summary>Column name in the summary.</summary>
    string Name { get; }

    /// <summary>What is being started, for the progress lines.</summary>
    string Description { get; }

    Task StartAsync();
    LoadTarget CreateLoadTarget();
}

/// <summary>
/// raftkvd processes with data on disk (fsync on), the first bootstrapping, the others joining it: three for the
/// cluster under test, or one (<c>--single</c>), which does the same work minus replication and so bounds from above
/// what three can do on the same machine. <paramref name="daemon"/> runs another build of raftkvd.dll (a baseline).
/// </summary>
internal sealed class RaftKvTarget(string root, int nodes, string? daemon = null, string? name = null) : ITarget
{
    private readonly Processes _processes = new();
    private readonly List<string> _http = [];

    public string Name => name ?? (nodes == 3 ? "raftkv" : $"raftkv {nodes}-node");

    public string Description => $"{nodes}-node {Name}" + (daemon is null ? "" : $" ({daemon})");

    public async Task StartAsync()
    {
        var dll = daemon ?? Path.Combine(AppContext.BaseDirectory, "raftkvd.dll");
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        for (var i = 0; i < nodes; i++)
        {
            var http = $"127.0.0.1:{Processes.FreePort()}";
            var raft = $"127.0.0.1:{Processes.FreePort()}";
            var args = new List<string> { dll, "-id", "node" + i, "-haddr", http, "-raddr", raft };
            if (i > 0) args.AddRange(["-join", _http[0]]);
            args.Add(Path.Combine(root, $"{Name.Replace(' ', '-')}-node{i}"));
            _processes.Start("dotnet", args);
            _http.Add(http);
            var url = $"http://{http}/readyz";
            await Processes.WaitUntil(async () => (await probe.GetAsync(url)).IsSuccessStatusCode, TimeSpan.FromSeconds(30), "raftkvd node" + i);
        }
    }

    // The engine sends the load straight to the leader (found through /status), as etcd's clients do: forwarding is
    // measured by the tests, not here.
    public LoadTarget CreateLoadTarget() => new RaftKvLoadTarget(_http);

    public void Dispose() => _processes.Dispose();
}

/// <summary>Three etcd members (Debian's etcd-server package) on loopback, driven through etcd's JSON gateway.</summary>
internal sealed class EtcdTarget(string root, string etcd) : ITarget
{
    private readonly Processes _processes = new();
    private readonly List<string> _client = [];

    public string Name => "etcd";

    public string Description => "3-node etcd";

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
        // Every member up and agreeing on a leader; the engine then finds the leader's client URL itself.
        using var probe = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        await Processes.WaitUntil(async () =>
        {
            var leaders = new HashSet<string>();
            foreach (var c in _client)
            {
                using var r = await probe.PostAsync(c + "/v3/maintenance/status", new StringContent("{}"));
                if (!r.IsSuccessStatusCode) return false;
                using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
                if (!doc.RootElement.TryGetProperty("leader", out var leader) || leader.GetString() is not { Length: > 0 } id || id == "0") return false;
                leaders.Add(id);
            }
            return leaders.Count == 1;
        }, TimeSpan.FromSeconds(30), "an etcd leader");
    }

    public LoadTarget CreateLoadTarget() => new EtcdLoadTarget(_client);

    public void Dispose() => _processes.Dispose();
}
