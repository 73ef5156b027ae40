using System.Buffers;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;

namespace RaftKv.Cli;

/// <summary>
/// <c>cluster up</c> / <c>cluster down</c>: a throwaway cluster of raftkvd processes on loopback, for trying things out
/// and for tests. raftkvd.dll is found beside raftkv.dll (the project references the server so the build puts it there).
/// </summary>
internal static class LocalClusterCommands
{
    /// <summary>The state file in the cluster directory: which PIDs and ports this tool started.</summary>
    public const string StateFileName = "cluster.json";

    public static void Add(RootCommand root, Func<ParseResult, CliContext> context)
    {
        var cluster = new Command("cluster", "Run a local test cluster of raftkvd processes on loopback");
        cluster.Subcommands.Add(Up(context));
        cluster.Subcommands.Add(Down(context));
        root.Subcommands.Add(cluster);
    }

    private static Command Up(Func<ParseResult, CliContext> context)
    {
        var nodes = new Option<int>("--nodes", "-n") { Description = "How many nodes (1-9)", DefaultValueFactory = _ => 3 };
        nodes.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > 9)
            {
                r.AddError("--nodes must be between 1 and 9");
            }
        });
        var dir = DirOption();
        var detach = new Option<bool>("--detach", "-d") { Description = "Leave the nodes running and exit (stop them with cluster down)" };
        var command = new Command("up", "Start nodes on free loopback ports: the first bootstraps, the others join it; Ctrl-C stops them") { nodes, dir, detach };
        command.SetAction(async (r, ct) =>
        {
            var c = context(r);
            var root = Path.GetFullPath(r.GetRequiredValue(dir));
            var stateFile = Path.Combine(root, StateFileName);
            if (File.Exists(stateFile) && ReadState(stateFile).Any(n => IsOurNode(n)))
            {
                throw new InvalidOperationException($"a cluster started from {root} is still running; stop it with: raftkv cluster down --dir {root}");
            }
            var serverDll = Path.Combine(AppContext.BaseDirectory, "raftkvd.dll");
            if (!File.Exists(serverDll))
            {
                throw new InvalidOperationException($"raftkvd.dll not found beside raftkv ({AppContext.BaseDirectory})");
            }
            Directory.CreateDirectory(root);
            var started = new List<(NodeState State, Process Process)>();
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
            try
            {
                for (var i = 0; i < r.GetValue(nodes); i++)
                {
                    var node = new NodeState("node" + i, 0, $"127.0.0.1:{FreePort()}", $"127.0.0.1:{FreePort()}", Path.Combine(root, "node" + i));
                    var process = StartNode(serverDll, node, started.Count == 0 ? null : started[0].State.HttpAddress, Path.Combine(root, node.Id + ".log"));
                    node = node with { Pid = process.Id };
                    started.Add((node, process));
                    // Written after every start, so whatever happens next, cluster down knows every PID.
                    WriteState(stateFile, started.Select(s => s.State));
                    if (i == 0)
                    {
                        await WaitReadyAsync(http, node, process, ct);
                    }
                }
                foreach (var (node, process) in started.Skip(1))
                {
                    await WaitReadyAsync(http, node, process, ct);
                }
            }
            catch
            {
                Stop(started.Select(s => s.Process));
                File.Delete(stateFile);
                throw;
            }

            var endpoints = string.Join(',', started.Select(s => s.State.HttpAddress));
            if (c.Output.Json)
            {
                c.Output.WriteJson(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("dir", root);
                    w.WriteString("endpoints", endpoints);
                    WriteNodes(w, started.Select(s => s.State));
                    w.WriteEndObject();
                });
            }
            else
            {
                c.Output.Table(["ID", "HTTP ADDRESS", "RAFT ADDRESS", "PID", "DATA"],
                    started.Select(s => new[] { s.State.Id, s.State.HttpAddress, s.State.RaftAddress, s.State.Pid.ToString(CultureInfo.InvariantCulture), s.State.DataDir }).ToList());
                c.Output.Line("");
                c.Output.Line($"export {CliApp.EndpointsVariable}={endpoints}");
                c.Output.Line(r.GetValue(detach)
                    ? $"running in the background; stop with: raftkv cluster down --dir {root}"
                    : "logs are in " + root + "; Ctrl-C stops the cluster");
            }
            if (r.GetValue(detach))
            {
                return ExitCodes.Success;
            }
            try
            {
                await Task.Delay(Timeout.Infinite, ct);
            }
            catch (OperationCanceledException)
            {
            }
            Stop(started.Select(s => s.Process));
            File.Delete(stateFile);
            if (!c.Output.Json)
            {
                c.Output.Line($"stopped {started.Count} nodes");
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Down(Func<ParseResult, CliContext> context)
    {
        var dir = DirOption();
        var command = new Command("down", "Stop the nodes cluster up started from that directory (by PID) and remove its state file") { dir };
        command.SetAction(r =>
        {
            var c = context(r);
            var root = Path.GetFullPath(r.GetRequiredValue(dir));
            var stateFile = Path.Combine(root, StateFileName);
            if (!File.Exists(stateFile))
            {
                throw new InvalidOperationException($"no cluster state in {root} ({StateFileName} not found)");
            }
            var stopped = 0;
            foreach (var node in ReadState(stateFile))
            {
                // Only a process that is still the raftkvd we started on that data directory: a PID may have been reused.
                if (!IsOurNode(node))
                {
                    continue;
                }
                try
                {
                    using var process = Process.GetProcessById(node.Pid);
                    process.Kill();
                    process.WaitForExit(10_000);
                    stopped++;
                }
                catch (Exception e) when (e is ArgumentException or InvalidOperationException)
                {
                    // Exited between the check and the kill.
                }
            }
            File.Delete(stateFile);
            c.Output.Line(c.Output.Json ? $"{{\"stopped\": {stopped}}}" : $"stopped {stopped} nodes");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Option<string> DirOption() => new("--dir")
    {
        Description = "Directory for the nodes' data, logs and the state file",
        DefaultValueFactory = _ => "raftkv-cluster",
        HelpName = "dir",
    };

    internal sealed record NodeState(string Id, int Pid, string HttpAddress, string RaftAddress, string DataDir);

    private static Process StartNode(string serverDll, NodeState node, string? join, string logFile)
    {
        // sh execs the node with its output appended to a log file: the PID stays the node's own, and the node never
        // writes into a pipe that disappears when raftkv exits (--detach).
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        foreach (var arg in new[] { "-c", "log=$1; shift; exec \"$@\" >>\"$log\" 2>&1", "sh", logFile, DotnetHost(), serverDll,
                     "-id", node.Id, "-haddr", node.HttpAddress, "-raddr", node.RaftAddress })
        {
            psi.ArgumentList.Add(arg);
        }
        if (join is not null)
        {
            psi.ArgumentList.Add("-join");
            psi.ArgumentList.Add(join);
        }
        psi.ArgumentList.Add(node.DataDir);
        return Process.Start(psi) ?? throw new InvalidOperationException("could not start raftkvd");
    }

    private static string DotnetHost() =>
        Environment.ProcessPath is { } path && Path.GetFileNameWithoutExtension(path) == "dotnet" ? path : "dotnet";

    private static async Task WaitReadyAsync(HttpClient http, NodeState node, Process process, CancellationToken ct)
    {
        var deadline = Stopwatch.StartNew();
        while (true)
        {
            if (process.HasExited)
            {
                throw new InvalidOperationException($"{node.Id} exited with code {process.ExitCode}; see {node.DataDir}.log");
            }
            try
            {
                using var response = await http.GetAsync($"http://{node.HttpAddress}/readyz", ct);
                if (response.StatusCode == HttpStatusCode.OK)
                {
                    return;
                }
            }
            catch (HttpRequestException)
            {
            }
            catch (TaskCanceledException) when (!ct.IsCancellationRequested)
            {
            }
            if (deadline.Elapsed > TimeSpan.FromSeconds(30))
            {
                throw new InvalidOperationException($"{node.Id} was not ready within 30s; see {node.DataDir}.log");
            }
            await Task.Delay(100, ct);
        }
    }

    private static void Stop(IEnumerable<Process> processes)
    {
        foreach (var process in processes)
        {
            try
            {
                if (!process.HasExited)
                {
                    process.Kill();
                }
                process.WaitForExit(10_000);
            }
            catch (InvalidOperationException)
            {
            }
            process.Dispose();
        }
    }

    /// <summary>True when <paramref name="node"/>'s PID is alive and still runs raftkvd.dll on that node's data directory.</summary>
    internal static bool IsOurNode(NodeState node)
    {
        try
        {
            var args = File.ReadAllText($"/proc/{node.Pid}/cmdline").Split('\0');
            return args.Any(a => a.EndsWith("raftkvd.dll", StringComparison.Ordinal)) && args.Contains(node.DataDir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    private static void WriteState(string path, IEnumerable<NodeState> nodes)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            WriteNodes(w, nodes);
            w.WriteEndObject();
        }
        var temp = path + ".tmp";
        File.WriteAllBytes(temp, buffer.WrittenSpan.ToArray());
        File.Move(temp, path, overwrite: true);
    }

    private static void WriteNodes(Utf8JsonWriter w, IEnumerable<NodeState> nodes)
    {
        w.WriteStartArray("nodes");
        foreach (var n in nodes)
        {
            w.WriteStartObject();
            w.WriteString("id", n.Id);
            w.WriteNumber("pid", n.Pid);
            w.WriteString("http_address", n.HttpAddress);
            w.WriteString("raft_address", n.RaftAddress);
            w.WriteString("data_dir", n.DataDir);
            w.WriteEndObject();
        }
        w.WriteEndArray();
    }

    internal static List<NodeState> ReadState(string path)
    {
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllBytes(path));
            return document.RootElement.GetProperty("nodes").EnumerateArray().Select(n => new NodeState(
                n.GetProperty("id").GetString() ?? "",
                n.GetProperty("pid").GetInt32(),
                n.GetProperty("http_address").GetString() ?? "",
                n.GetProperty("raft_address").GetString() ?? "",
                n.GetProperty("data_dir").GetString() ?? "")).ToList();
        }
        catch (Exception e) when (e is JsonException or KeyNotFoundException or InvalidOperationException or FormatException)
        {
            throw new InvalidOperationException($"{path} is not a raftkv cluster state file: {e.Message}");
        }
    }
}
