using System.Diagnostics;
using System.Text.Json;
using RaftKv.Cli;

namespace RaftKv.Client.Tests;

/// <summary><c>raftkv cluster up --detach</c> and <c>cluster down</c>: real processes, stopped by PID whatever happens.</summary>
public sealed class LocalClusterCliTests
{
    [Fact]
    public async Task Cluster_up_starts_a_working_cluster_and_cluster_down_stops_exactly_its_nodes()
    {
        var dir = Path.Combine(Path.GetTempPath(), "raftkv-client-tests", "up-" + Guid.NewGuid().ToString("N"));
        var pids = new List<int>();
        try
        {
            var (code, stdout, stderr) = await Run("cluster", "up", "--raftkvd", RaftkvdProcess.ServerDll, "--nodes", "2", "--dir", dir, "--detach", "-o", "json");
            Assert.True(code == 0, stderr);
            using (var doc = JsonDocument.Parse(stdout))
            {
                pids.AddRange(doc.RootElement.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("pid").GetInt32()));
                var endpoints = doc.RootElement.GetProperty("endpoints").GetString()!;
                Assert.Equal(2, pids.Count);
                Assert.True(File.Exists(Path.Combine(dir, "cluster.json")));

                Assert.Equal(0, (await Run("--endpoints", endpoints, "set", "up", "and-running")).Code);
                Assert.Equal("and-running\n", (await Run("--endpoints", endpoints, "get", "up")).Out);
            }

            var down = await Run("cluster", "down", "--dir", dir);
            Assert.Equal((0, "stopped 2 nodes\n"), (down.Code, down.Out));
            Assert.All(pids, pid => Assert.False(LocalClusterCommandsProbe.IsRaftkvd(pid)));
            Assert.Null(LocalClusterCommands.RunningClusterEndpoints(dir));
        }
        finally
        {
            // Whatever failed above, no node outlives the test (only PIDs this test started, and only if still raftkvd).
            foreach (var pid in pids)
            {
                if (LocalClusterCommandsProbe.IsRaftkvd(pid))
                {
                    using var p = Process.GetProcessById(pid);
                    p.Kill();
                    p.WaitForExit(10_000);
                }
            }
            try
            {
                Directory.Delete(dir, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }

    [Fact]
    public async Task Cluster_up_again_on_the_same_dir_starts_the_same_cluster_with_its_data()
    {
        var dir = Path.Combine(Path.GetTempPath(), "raftkv-client-tests", "again-" + Guid.NewGuid().ToString("N"));
        var pids = new List<int>();
        try
        {
            var first = await UpAsync(dir, pids);
            Assert.Equal(0, (await Run("--endpoints", first, "set", "kept", "across-restarts")).Code);
            Assert.Equal(first, string.Join(',', LocalClusterCommands.RunningClusterEndpoints(dir)!));
            Assert.Equal(0, (await Run("cluster", "down", "--dir", dir)).Code);

            // Same ports as before: the nodes' stored configuration names them, so nodes on new ports would never be ready.
            var second = await UpAsync(dir, pids);
            Assert.Equal(first, second);
            Assert.Equal("across-restarts\n", (await Run("--endpoints", second, "get", "kept", "--level", "linearizable")).Out);
            Assert.Equal(0, (await Run("--endpoints", second, "set", "written", "after-restart")).Code);

            // A different size is refused at once, and the running cluster is left alone.
            var refused = await Run("cluster", "up", "--raftkvd", RaftkvdProcess.ServerDll, "--nodes", "3", "--dir", dir, "--detach");
            Assert.Equal(1, refused.Code);
            Assert.Contains("still running", refused.Err);
            Assert.Equal(0, (await Run("cluster", "down", "--dir", dir)).Code);
            var otherSize = await Run("cluster", "up", "--raftkvd", RaftkvdProcess.ServerDll, "--nodes", "3", "--dir", dir, "--detach");
            Assert.Equal(1, otherSize.Code);
            Assert.Contains("holds a 2-node cluster", otherSize.Err);
        }
        finally
        {
            KillAll(pids);
            TryDelete(dir);
        }
    }

    [Fact]
    public async Task Cluster_up_on_node_data_without_its_addresses_refuses_at_once()
    {
        var dir = Path.Combine(Path.GetTempPath(), "raftkv-client-tests", "orphan-" + Guid.NewGuid().ToString("N"));
        try
        {
            Directory.CreateDirectory(Path.Combine(dir, "node0", "wal"));
            var (code, _, stderr) = await Run("cluster", "up", "--raftkvd", RaftkvdProcess.ServerDll, "--dir", dir, "--detach");
            Assert.Equal(1, code);
            Assert.Contains("holds node data", stderr);
            Assert.Contains("remove " + dir, stderr);
        }
        finally
        {
            TryDelete(dir);
        }
    }

    [Fact]
    public async Task The_built_raftkv_starts_the_raftkvd_its_build_put_beside_it()
    {
        // raftkv's own build output (not this test's, which holds raftkvd.dll for other reasons), run as a process
        // with no --raftkvd, no RAFTKV_RAFTKVD and no raftkvd on PATH: only the copy the build makes can be found.
        var cliDll = Path.Combine(BuiltCliDirectory(), "raftkv.dll");
        Assert.True(File.Exists(Path.Combine(BuiltCliDirectory(), LocalClusterCommands.BuiltRaftkvd)), "the build did not copy raftkvd beside " + cliDll);
        var dir = Path.Combine(Path.GetTempPath(), "raftkv-client-tests", "built-" + Guid.NewGuid().ToString("N"));
        var pids = new List<int>();
        try
        {
            var up = await RunProcessAsync(cliDll, "cluster", "up", "--nodes", "1", "--dir", dir, "--detach", "-o", "json");
            Assert.True(up.Code == 0, up.Err);
            using (var doc = JsonDocument.Parse(up.Out))
            {
                pids.AddRange(doc.RootElement.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("pid").GetInt32()));
            }
            var node = Assert.Single(pids);
            var cmdline = File.ReadAllText($"/proc/{node}/cmdline").Split('\0');
            Assert.Contains(Path.Combine(BuiltCliDirectory(), LocalClusterCommands.BuiltRaftkvd), cmdline);
            var down = await RunProcessAsync(cliDll, "cluster", "down", "--dir", dir);
            Assert.Equal((0, "stopped 1 nodes\n"), (down.Code, down.Out));
        }
        finally
        {
            KillAll(pids);
            TryDelete(dir);
        }
    }

    [Fact]
    public void Raftkvd_is_looked_for_in_the_flag_then_the_environment_then_beside_raftkv_then_on_path()
    {
        var root = Path.Combine(Path.GetTempPath(), "raftkv-client-tests", "find-" + Guid.NewGuid().ToString("N"));
        try
        {
            var flag = Touch(root, "flag", "raftkvd.dll");
            var environment = Touch(root, "env", "my-raftkvd");
            var beside = Path.Combine(root, "cli");
            var onPath = Touch(root, "bin", "raftkvd");
            var searchPath = string.Join(Path.PathSeparator, Path.Combine(root, "empty"), Path.Combine(root, "bin"));

            Assert.Equal(flag, LocalClusterCommands.FindRaftkvd(flag, environment, beside, searchPath)[^1]);
            Assert.Equal(2, LocalClusterCommands.FindRaftkvd(flag, null, beside, searchPath).Count);   // dotnet raftkvd.dll
            Assert.Equal([environment], LocalClusterCommands.FindRaftkvd(" ", environment, beside, searchPath));   // an executable runs as it is
            Assert.Equal([onPath], LocalClusterCommands.FindRaftkvd(null, null, beside, searchPath));
            var built = Touch(beside, "raftkvd", "raftkvd.dll");
            Assert.Equal(built, LocalClusterCommands.FindRaftkvd(null, null, beside, searchPath)[^1]);

            var missing = Assert.Throws<InvalidOperationException>(() => LocalClusterCommands.FindRaftkvd(Path.Combine(root, "nope.dll"), environment, beside, searchPath));
            Assert.Equal($"raftkvd not found at {Path.Combine(root, "nope.dll")} (from --raftkvd)", missing.Message);
            var missingEnv = Assert.Throws<InvalidOperationException>(() => LocalClusterCommands.FindRaftkvd(null, Path.Combine(root, "nope"), beside, searchPath));
            Assert.Contains("(from RAFTKV_RAFTKVD)", missingEnv.Message);
            var nowhere = Assert.Throws<InvalidOperationException>(() => LocalClusterCommands.FindRaftkvd(null, null, Path.Combine(root, "other"), Path.Combine(root, "empty")));
            Assert.Contains("give its path with --raftkvd or RAFTKV_RAFTKVD", nowhere.Message);
        }
        finally
        {
            TryDelete(root);
        }

        static string Touch(string root, string folder, string name)
        {
            Directory.CreateDirectory(Path.Combine(root, folder));
            var path = Path.Combine(root, folder, name);
            File.WriteAllText(path, "");
            return path;
        }
    }

    /// <summary>src/RaftKv.Cli's output directory for this build's configuration (the test project references it, so it is built).</summary>
    private static string BuiltCliDirectory()
    {
        var testProject = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(testProject, "RaftKv.Client.Tests.csproj")))
        {
            testProject = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(testProject))
                ?? throw new InvalidOperationException("the test project's directory was not found above " + AppContext.BaseDirectory);
        }
        var outputPath = Path.GetRelativePath(testProject, AppContext.BaseDirectory);   // bin/<configuration>/net10.0
        return Path.GetFullPath(Path.Combine(testProject, "..", "..", "src", "RaftKv.Cli", outputPath));
    }

    private static async Task<(int Code, string Out, string Err)> RunProcessAsync(string cliDll, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(cliDll);
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }
        psi.Environment.Remove(LocalClusterCommands.RaftkvdVariable);
        psi.Environment["PATH"] = "/usr/bin:/bin";   // no raftkvd there; raftkv runs raftkvd.dll with its own dotnet
        using var process = Process.Start(psi)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(90));
        await process.WaitForExitAsync(timeout.Token);
        return (process.ExitCode, await stdout, await stderr);
    }

    private static async Task<string> UpAsync(string dir, List<int> pids)
    {
        var (code, stdout, stderr) = await Run("cluster", "up", "--raftkvd", RaftkvdProcess.ServerDll, "--nodes", "2", "--dir", dir, "--detach", "-o", "json");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        pids.AddRange(doc.RootElement.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("pid").GetInt32()));
        return doc.RootElement.GetProperty("endpoints").GetString()!;
    }

    private static void KillAll(IEnumerable<int> pids)
    {
        // Only PIDs this test started, and only while they still run raftkvd.
        foreach (var pid in pids)
        {
            if (LocalClusterCommandsProbe.IsRaftkvd(pid))
            {
                using var p = Process.GetProcessById(pid);
                p.Kill();
                p.WaitForExit(10_000);
            }
        }
    }

    private static void TryDelete(string dir)
    {
        try
        {
            Directory.Delete(dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private static async Task<(int Code, string Out, string Err)> Run(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await CliApp.RunAsync(args, stdout, stderr);
        return (code, stdout.ToString(), stderr.ToString());
    }

    private static class LocalClusterCommandsProbe
    {
        public static bool IsRaftkvd(int pid)
        {
            try
            {
                return File.ReadAllText($"/proc/{pid}/cmdline").Contains("raftkvd.dll", StringComparison.Ordinal);
            }
            catch (IOException)
            {
                return false;
            }
        }
    }
}
