using System.Diagnostics;
using System.Net;
using System.Text;

namespace RaftKv.Server.Tests;

/// <summary>
/// A real raftkvd process whose disk "fills up": it runs under a file-size limit (RLIMIT_FSIZE, with SIGXFSZ ignored so
/// the write fails instead of the signal killing the process), so the WAL write that crosses it fails as on a full disk.
/// The raft loop dies, and the process must end with <see cref="Hosting.Daemon.NodeFailed"/> and a one-line reason,
/// not linger serving nothing.
/// </summary>
public sealed class NodeFailureProcessTests : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "raftkvd-fsize-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dataDir)) Directory.Delete(_dataDir, recursive: true);
    }

    [Fact]
    public async Task A_raftkvd_whose_disk_fills_up_exits_with_status_3_and_a_one_line_reason()
    {
        if (!OperatingSystem.IsLinux()) return; // the limit is set with bash's ulimit
        var http = $"127.0.0.1:{FreePorts.Pick()}";
        var raft = $"127.0.0.1:{FreePorts.Pick()}";
        var raftkvd = Path.Combine(AppContext.BaseDirectory, "raftkvd.dll");
        var psi = new ProcessStartInfo("bash") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // 6 MB (ulimit counts 1 KiB blocks). W^X off: with it on, the runtime maps its code through a file and would
        // hit the limit itself at start.
        psi.Environment["DOTNET_EnableWriteXorExecute"] = "0";
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add("trap '' XFSZ; ulimit -f 6000; exec dotnet \"$0\" -id n1 -haddr \"$1\" -raddr \"$2\" \"$3\"");
        foreach (var a in new[] { raftkvd, http, raft, _dataDir }) psi.ArgumentList.Add(a);
        var output = new StringBuilder();
        using var process = new Process { StartInfo = psi };
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri("http://" + http), Timeout = TimeSpan.FromSeconds(20) };
            await RunningServer.WaitUntilAsync(async () =>
            {
                Assert.False(process.HasExited, $"raftkvd exited at start: {Output()}");
                try
                {
                    return (await client.GetAsync("/readyz")).StatusCode == HttpStatusCode.OK;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            }, "raftkvd to be ready", 30_000);

            // Values of ~900 KB: the 7th or so crosses the limit.
            var value = new string('x', 900_000);
            for (var i = 0; i < 20 && !process.HasExited; i++)
            {
                try
                {
                    await client.PostAsync("/key", new StringContent($"{{\"k{i}\":\"{value}\"}}"));
                }
                catch (HttpRequestException)
                {
                    // The process went down while answering.
                }
            }

            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
            await process.WaitForExitAsync(deadline.Token);
            process.WaitForExit(); // and its output
            Assert.Equal(3, process.ExitCode);
            var reason = Assert.Single(Output().Split('\n'), l => l.StartsWith("raftkvd: the node stopped:", StringComparison.Ordinal));
            Assert.Contains("raft loop failed", reason);
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }

        string Output()
        {
            lock (output) return output.ToString();
        }
    }
}
