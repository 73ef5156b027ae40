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
            Assert.False(File.Exists(Path.Combine(dir, "cluster.json")));
            Assert.All(pids, pid => Assert.False(File.Exists($"/proc/{pid}/cmdline") && File.ReadAllText($"/proc/{pid}/cmdline").Contains("raftkvd.dll")));
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
