using System.Buffers;
using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace RaftKv.Cli;

/// <summary>
/// <c>cluster up</c> / <c>cluster down</c>: a throwaway cluster of raftkvd processes on loopback, for trying things out
/// and for tests. Which raftkvd runs is decided by <see cref="FindRaftkvd"/>.
/// </summary>
internal static class LocalClusterCommands
{
    /// <summary>Environment variable naming the raftkvd that <c>cluster up</c> starts (as <c>--raftkvd</c> does).</summary>
    public const string RaftkvdVariable = "RAFTKV_RAFTKVD";

    /// <summary>Where building (or publishing) raftkv puts a copy of raftkvd, relative to raftkv's own directory.</summary>
    public static readonly string BuiltRaftkvd = Path.Combine("raftkvd", "raftkvd.dll");

    /// <summary>The cluster directory when --dir is not given, relative to the working directory.</summary>
    public const string DefaultDir = "raftkv-cluster";

    /// <summary>The state file in the cluster directory: which PIDs and ports this tool started.</summary>
    public const string StateFileName = "cluster.json";

    /// <summary>
    /// The endpoints of the cluster <c>cluster up</c> runs from <see cref="DefaultDir"/> under the working directory, if
    /// one runs: commands given no endpoints use them, so the next command after <c>cluster up</c> reaches its cluster.
    /// </summary>
    public static IReadOnlyList<string>? RunningDefaultClusterEndpoints() => RunningClusterEndpoints(DefaultDir);

    /// <summary>The HTTP addresses of the nodes <c>cluster up</c> runs from <paramref name="dir"/>, or null if none runs.</summary>
    internal static IReadOnlyList<string>? RunningClusterEndpoints(string dir)
    {
        var stateFile = Path.Combine(Path.GetFullPath(dir), StateFileName);
        if (!File.Exists(stateFile))
        {
            return null;
        }
        try
        {
            var running = ReadState(stateFile).Where(IsOurNode).Select(n => n.HttpAddress).ToList();
            return running.Count > 0 ? running : null;
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

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
        var raftkvd = new Option<string?>("--raftkvd")
        {
            Description = $"The raftkvd to start: a raftkvd.dll (run with dotnet) or an executable [default: ${RaftkvdVariable}, else {BuiltRaftkvd} in raftkv's directory (building raftkv puts it there), else raftkvd on PATH]",
            HelpName = "path",
        };
        var command = new Command("up", "Start nodes on free loopback ports: the first bootstraps, the others join it; Ctrl-C stops them. On a directory that held a cluster, starts that cluster again (same ports and data)") { nodes, dir, detach, raftkvd };
        command.SetAction(async (r, ct) =>
        {
            var c = context(r);
            var root = Path.GetFullPath(r.GetRequiredValue(dir));
            var stateFile = Path.Combine(root, StateFileName);
            var daemon = FindRaftkvd(r.GetValue(raftkvd), Environment.GetEnvironmentVariable(RaftkvdVariable), AppContext.BaseDirectory,
                Environment.GetEnvironmentVariable("PATH"));
            var plan = PlanNodes(root, stateFile, r.GetValue(nodes), r.GetResult(nodes) is { Implicit: false });
            var restarting = plan.Restarting;
            Directory.CreateDirectory(root);
            var started = new List<(NodeState State, Process Process)>();
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
            try
            {
                foreach (var planned in plan.Nodes)
                {
                    var process = StartNode(daemon, planned, started.Count == 0 ? null : started[0].State.HttpAddress, Path.Combine(root, planned.Id + ".log"));
                    var node = planned with { Pid = process.Id };
                    started.Add((node, process));
                    // Written after every start, so whatever happens next, cluster down knows every PID.
                    WriteState(stateFile, started.Select(s => s.State).Concat(plan.Nodes.Skip(started.Count)));
                    // A new cluster's first node must lead before the others can join it; a restarted cluster needs a
                    // quorum of its nodes up before any of them is ready.
                    if (started.Count == 1 && !restarting)
                    {
                        await WaitReadyAsync(http, node, process, ct);
                    }
                }
                foreach (var (node, process) in restarting ? started : started.Skip(1))
                {
                    await WaitReadyAsync(http, node, process, ct);
                }
            }
            catch
            {
                Stop(started.Select(s => s.Process));
                // The addresses stay recorded (with no PIDs): the nodes' stored configuration names them.
                WriteState(stateFile, plan.Nodes.Select(n => n with { Pid = 0 }));
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
                    w.WriteBoolean("restarted", restarting);
                    WriteNodes(w, started.Select(s => s.State));
                    w.WriteEndObject();
                });
            }
            else
            {
                c.Output.Table(["ID", "HTTP ADDRESS", "RAFT ADDRESS", "PID", "DATA"],
                    started.Select(s => new[] { s.State.Id, s.State.HttpAddress, s.State.RaftAddress, s.State.Pid.ToString(CultureInfo.InvariantCulture), s.State.DataDir }).ToList());
                c.Output.Line("");
                if (restarting)
                {
                    c.Output.Line($"started the cluster in {root} again, with its data");
                }
                c.Output.Line($"export {CliApp.EndpointsVariable}={endpoints}");
                c.Output.Line(Path.GetFullPath(DefaultDir) == root
                    ? "(raftkv run from this directory uses these endpoints without the export)"
                    : "(or run raftkv with --endpoints " + endpoints + ")");
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
            WriteState(stateFile, started.Select(s => s.State with { Pid = 0 }));
            if (!c.Output.Json)
            {
                c.Output.Line($"stopped {started.Count} nodes; cluster up --dir {root} starts them again with their data");
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Down(Func<ParseResult, CliContext> context)
    {
        var dir = DirOption();
        var command = new Command("down", "Stop the nodes cluster up started from that directory (by PID); their data and addresses stay, for the next cluster up") { dir };
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
            // The addresses stay: the nodes' stored configuration names them, and cluster up starts the same cluster again.
            WriteState(stateFile, ReadState(stateFile).Select(n => n with { Pid = 0 }));
            c.Output.Line(c.Output.Json ? $"{{\"stopped\": {stopped}}}" : $"stopped {stopped} nodes");
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>The nodes <c>cluster up</c> starts, and whether they are an earlier cluster started again.</summary>
    internal sealed record NodePlan(IReadOnlyList<NodeState> Nodes, bool Restarting);

    /// <summary>
    /// A directory that held a cluster is started again as that cluster: same ids, data and ports. Its nodes' stored
    /// configuration names each member's raft address, so nodes on new ports would wait forever for peers nobody
    /// answers for. Anything that prevents that (nodes still running, a different --nodes, a port now taken, data with
    /// no record of its addresses) is refused at once, saying what to do.
    /// </summary>
    internal static NodePlan PlanNodes(string root, string stateFile, int count, bool countGiven)
    {
        if (File.Exists(stateFile))
        {
            var stored = ReadState(stateFile);
            if (stored.Any(IsOurNode))
            {
                throw new InvalidOperationException($"a cluster started from {root} is still running; stop it with: raftkv cluster down --dir {root}");
            }
            if (stored.Count > 0)
            {
                if (countGiven && count != stored.Count)
                {
                    throw new InvalidOperationException(
                        $"{root} holds a {stored.Count}-node cluster; start it again with --nodes {stored.Count} (or without --nodes), or remove {root} (or pick another --dir) for a new {count}-node cluster");
                }
                foreach (var node in stored)
                {
                    foreach (var address in new[] { node.HttpAddress, node.RaftAddress })
                    {
                        if (!PortFree(address))
                        {
                            throw new InvalidOperationException(
                                $"{node.Id}'s address {address} (recorded in {stateFile}; the cluster's configuration names it) is taken by another program; free it, or remove {root} for a new cluster");
                        }
                    }
                }
                return new NodePlan(stored.Select(n => n with { Pid = 0 }).ToList(), Restarting: true);
            }
        }
        var leftover = Enumerable.Range(0, 10).Select(i => Path.Combine(root, "node" + i))
            .FirstOrDefault(d => Directory.Exists(d) && Directory.EnumerateFileSystemEntries(d).Any());
        if (leftover is not null)
        {
            throw new InvalidOperationException(
                $"{leftover} holds node data but {stateFile}, which records the addresses its cluster was configured with, is missing; remove {root} (or pick another --dir) for a new cluster");
        }
        var nodes = Enumerable.Range(0, count)
            .Select(i => new NodeState("node" + i, 0, $"127.0.0.1:{FreePort()}", $"127.0.0.1:{FreePort()}", Path.Combine(root, "node" + i)))
            .ToList();
        return new NodePlan(nodes, Restarting: false);
    }

    private static bool PortFree(string address)
    {
        var colon = address.LastIndexOf(':');
        if (colon < 0 || !IPAddress.TryParse(address[..colon], out var ip) || !int.TryParse(address[(colon + 1)..], CultureInfo.InvariantCulture, out var port))
        {
            throw new InvalidOperationException($"\"{address}\" in the cluster state file is not an ip:port this tool writes; remove the directory for a new cluster");
        }
        try
        {
            using var listener = new TcpListener(ip, port);
            listener.Start();
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    private static Option<string> DirOption() => new("--dir")
    {
        Description = "Directory for the nodes' data, logs and the state file",
        DefaultValueFactory = _ => DefaultDir,
        HelpName = "dir",
    };

    internal sealed record NodeState(string Id, int Pid, string HttpAddress, string RaftAddress, string DataDir);

    /// <summary>
    /// The command line that starts raftkvd, from the first of: <paramref name="given"/> (<c>--raftkvd</c>),
    /// <paramref name="fromEnvironment"/> (<see cref="RaftkvdVariable"/>), the copy the build puts in
    /// <paramref name="baseDirectory"/>, a <c>raftkvd</c> executable on <paramref name="searchPath"/>. A path ending in
    /// .dll runs with dotnet; anything else runs as it is.
    /// </summary>
    /// <exception cref="InvalidOperationException">The path given does not exist, or none of those places has raftkvd.</exception>
    internal static IReadOnlyList<string> FindRaftkvd(string? given, string? fromEnvironment, string baseDirectory, string? searchPath)
    {
        if (!string.IsNullOrWhiteSpace(given) || !string.IsNullOrWhiteSpace(fromEnvironment))
        {
            var (path, source) = !string.IsNullOrWhiteSpace(given) ? (given, "--raftkvd") : (fromEnvironment!, RaftkvdVariable);
            var full = Path.GetFullPath(path);
            return File.Exists(full) ? Launch(full) : throw new InvalidOperationException($"raftkvd not found at {full} (from {source})");
        }
        var built = Path.Combine(baseDirectory, BuiltRaftkvd);
        if (File.Exists(built))
        {
            return Launch(built);
        }
        foreach (var directory in (searchPath ?? "").Split(Path.PathSeparator, StringSplitOptions.RemoveEmptyEntries))
        {
            var candidate = Path.Combine(directory, "raftkvd");
            if (File.Exists(candidate))
            {
                return Launch(Path.GetFullPath(candidate));
            }
        }
        throw new InvalidOperationException(
            $"raftkvd not found: neither {built} (building raftkv puts it there) nor raftkvd on PATH; give its path with --raftkvd or {RaftkvdVariable}");

        static IReadOnlyList<string> Launch(string path) =>
            path.EndsWith(".dll", StringComparison.OrdinalIgnoreCase) ? [DotnetHost(), path] : [path];
    }

    private static Process StartNode(IReadOnlyList<string> daemon, NodeState node, string? join, string logFile)
    {
        // sh execs the node with its output appended to a log file: the PID stays the node's own, and the node never
        // writes into a pipe that disappears when raftkv exits (--detach).
        var psi = new ProcessStartInfo("/bin/sh") { UseShellExecute = false };
        foreach (var arg in new[] { "-c", "log=$1; shift; exec \"$@\" >>\"$log\" 2>&1", "sh", logFile }.Concat(daemon)
                     .Concat(["-id", node.Id, "-haddr", node.HttpAddress, "-raddr", node.RaftAddress]))
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

    /// <summary>
    /// True when <paramref name="node"/>'s PID is alive and still runs the command line <c>cluster up</c> gave that node
    /// (its HTTP address and data directory), whichever raftkvd it ran.
    /// </summary>
    internal static bool IsOurNode(NodeState node)
    {
        try
        {
            var args = File.ReadAllText($"/proc/{node.Pid}/cmdline").Split('\0');
            var haddr = Array.IndexOf(args, "-haddr");
            return haddr >= 0 && haddr + 1 < args.Length && args[haddr + 1] == node.HttpAddress && args.Contains(node.DataDir);
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
