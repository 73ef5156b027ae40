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
            var (code, stdout, stderr) = await Run("cluster", "up", "--nodes", "2", "--dir", dir, "--detach", "-o", "json");
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

            // Today's failure was "node0 was not ready within 30s" after 33 s: new ports, and a configuration naming the old ones.
            var second = await UpAsync(dir, pids);
            Assert.Equal(first, second);
            Assert.Equal("across-restarts\n", (await Run("--endpoints", second, "get", "kept", "--level", "linearizable")).Out);
            Assert.Equal(0, (await Run("--endpoints", second, "set", "written", "after-restart")).Code);

            // A different size is refused at once, and the running cluster is left alone.
            var refused = await Run("cluster", "up", "--nodes", "3", "--dir", dir, "--detach");
            Assert.Equal(1, refused.Code);
            Assert.Contains("still running", refused.Err);
            Assert.Equal(0, (await Run("cluster", "down", "--dir", dir)).Code);
            var otherSize = await Run("cluster", "up", "--nodes", "3", "--dir", dir, "--detach");
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
            var (code, _, stderr) = await Run("cluster", "up", "--dir", dir, "--detach");
            Assert.Equal(1, code);
            Assert.Contains("holds node data", stderr);
            Assert.Contains("remove " + dir, stderr);
        }
        finally
        {
            TryDelete(dir);
        }
    }

    private static async Task<string> UpAsync(string dir, List<int> pids)
    {
        var (code, stdout, stderr) = await Run("cluster", "up", "--nodes", "2", "--dir", dir, "--detach", "-o", "json");
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
