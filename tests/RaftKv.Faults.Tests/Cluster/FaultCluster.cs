using System.Diagnostics;
using System.Net;
using System.Text.Json;
using RaftKv.Faults.Tests.Relay;

namespace RaftKv.Faults.Tests.Cluster;

/// <summary>
/// Real raftkvd processes, each behind a <see cref="RaftLinkRelay"/>: a node binds its raft port and advertises the
/// relay's, so every raft connection between nodes crosses a relay the test controls. Process faults (kill -9,
/// SIGSTOP/SIGCONT, wipe) act on the PIDs this class started; every process is killed by its PID on dispose.
/// </summary>
public sealed class FaultCluster : RaftkvdCluster
{
    private readonly Dictionary<string, (int Http, int Raft, int Relay)> _ports = [];
    private readonly HashSet<string> _paused = [];
    private readonly HashSet<string> _down = [];

    // Probes of a cluster under faults must give up fast: a paused node never answers.
    private readonly HttpClient _probe = new() { Timeout = TimeSpan.FromSeconds(1) };

    public FaultCluster() : base("raftkv-faults")
    {
        // Small snapshot thresholds, so a node that was away long enough catches up from a snapshot, under faults too.
        CommonArgs.AddRange(["--request-timeout", "2s", "--snapshot-threshold", "300", "--trailing-logs", "100", "--snapshot-interval", "1s"]);
    }

    public RelayNetwork Network { get; } = new();
    public IReadOnlyList<string> Names => [.. _ports.Keys];
    public bool IsPaused(string name) => _paused.Contains(name);
    public bool IsDown(string name) => _down.Contains(name);

    /// <summary>node0 founds the cluster, the others join it; returns once every node is ready and a member.</summary>
    public async Task StartAsync(int size)
    {
        for (var i = 0; i < size; i++)
        {
            var name = "node" + i;
            var http = FreePorts.Pick();
            var raft = FreePorts.Pick();
            _ports[name] = (http, raft, Network.AddRelay(name, raft));
            var node = Launch(name, i == 0 ? null : Nodes["node0"].HttpAddress);
            if (i == 0) await WaitReadyAsync(node);
        }
        foreach (var n in Nodes.Values.ToList()) await WaitReadyAsync(n, TimeSpan.FromSeconds(60));
        await Eventually(async () => (await ClusterServersAsync(Nodes["node0"])).Count == size, $"{size} servers in the configuration", TimeSpan.FromSeconds(60));
    }

    private RaftkvdProcess Launch(string name, string? join)
    {
        var (http, raft, relay) = _ports[name];
        return Start(name, join, ["--raft-adv-addr", $"127.0.0.1:{relay}"], http, raft);
    }

    /// <summary>kill -9.</summary>
    public void Kill(string name)
    {
        Nodes[name].Kill();
        _paused.Remove(name);
        _down.Add(name);
    }

    /// <summary>Starts a killed node again: same flags, ports and data directory.</summary>
    public void Restart(string name)
    {
        Launch(name, null);
        _down.Remove(name);
    }

    /// <summary>kill -9, delete the data directory, start again with -join through another node: the node lost its disk.</summary>
    public void WipeAndRejoin(string name)
    {
        Kill(name);
        Directory.Delete(DataDir(name), recursive: true);
        var via = Names.First(n => n != name && !IsDown(n));
        Launch(name, Nodes[via].HttpAddress);
        _down.Remove(name);
    }

    /// <summary>SIGSTOP: the process keeps its sockets but does nothing (a long GC pause, a stalled VM).</summary>
    public async Task PauseAsync(string name)
    {
        await SignalAsync(Nodes[name].Pid, "-STOP");
        _paused.Add(name);
    }

    /// <summary>SIGCONT.</summary>
    public async Task ResumeAsync(string name)
    {
        await SignalAsync(Nodes[name].Pid, "-CONT");
        _paused.Remove(name);
    }

    private static async Task SignalAsync(int pid, string signal)
    {
        var psi = new ProcessStartInfo("kill") { UseShellExecute = false, RedirectStandardError = true };
        psi.ArgumentList.Add(signal);
        psi.ArgumentList.Add(pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        using var p = Process.Start(psi)!;
        await p.WaitForExitAsync();
        if (p.ExitCode != 0) throw new InvalidOperationException($"kill {signal} {pid} failed: {await p.StandardError.ReadToEndAsync()}");
    }

    /// <summary>Ends every fault: links pass, paused nodes continue, killed nodes start again.</summary>
    public async Task HealAllAsync()
    {
        Network.HealAll();
        foreach (var n in _paused.ToList()) await ResumeAsync(n);
        foreach (var n in _down.ToList()) Restart(n);
    }

    /// <summary>The node that says it leads now, asking each running, unpaused node once; null when none does.</summary>
    public async Task<string?> ProbeLeaderAsync()
    {
        foreach (var name in Names.Where(n => !IsDown(n) && !IsPaused(n)))
        {
            try
            {
                var text = await _probe.GetStringAsync(new Uri(Nodes[name].BaseUri, "/raft/stats"));
                using var doc = JsonDocument.Parse(text);
                if (doc.RootElement.GetProperty("state").GetString() == "Leader") return name;
            }
            catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException or KeyNotFoundException)
            {
            }
        }
        return null;
    }

    /// <summary>
    /// After healing, with the clients stopped: every node ready and every node at the same applied index, so each
    /// holds everything committed.
    /// </summary>
    public async Task WaitConvergedAsync(TimeSpan timeout)
    {
        foreach (var n in Nodes.Values.ToList()) await WaitReadyAsync(n, timeout);
        await Eventually(async () =>
        {
            var applied = new List<long>();
            foreach (var name in Names)
            {
                using var r = await _probe.GetAsync(new Uri(Nodes[name].BaseUri, "/raft/stats"));
                if (r.StatusCode != HttpStatusCode.OK) return false;
                using var doc = JsonDocument.Parse(await r.Content.ReadAsStringAsync());
                var a = doc.RootElement.GetProperty("applied_index");
                applied.Add(a.ValueKind == JsonValueKind.String ? long.Parse(a.GetString()!, System.Globalization.CultureInfo.InvariantCulture) : a.GetInt64());
            }
            return applied.Distinct().Count() == 1;
        }, "every node to apply the same index", timeout);
    }

    public override void Dispose()
    {
        base.Dispose();
        Network.Dispose();
        _probe.Dispose();
    }
}
