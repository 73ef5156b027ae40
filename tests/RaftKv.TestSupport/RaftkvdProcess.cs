using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace RaftKv.TestSupport;

/// <summary>
/// One real raftkvd process, for the test projects that start them (raftkvd.dll must sit beside the test assembly:
/// reference src/RaftKv.Server from the test project). Output is captured for failure messages; the process is always killed (by its PID)
/// when the test ends, pass or fail.
/// </summary>
public sealed class RaftkvdProcess : IDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private RaftkvdProcess(Process process, string name, int httpPort, int raftPort, string dataDir)
    {
        _process = process;
        Name = name;
        HttpPort = httpPort;
        RaftPort = raftPort;
        DataDir = dataDir;
    }

    public string Name { get; }
    public int HttpPort { get; }
    public int RaftPort { get; }
    public string DataDir { get; }
    public string HttpAddress => $"127.0.0.1:{HttpPort}";
    public string RaftAddress => $"127.0.0.1:{RaftPort}";
    public Uri BaseUri => new($"http://{HttpAddress}");
    public bool HasExited => _process.HasExited;
    public int Pid => _process.Id;

    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    // HasExited does not wait for the output readers: the last lines may still be on their way.
    private bool HasExitedWithAllOutput => _process.HasExited && _process.WaitForExit(5_000);

    /// <summary>
    /// True when the process stopped, before writing anything, because a port it was given was taken meanwhile: its
    /// port check says so. (A bind that fails later, after the node wrote its first state, does not count.)
    /// </summary>
    public bool ExitedOnTakenPort => HasExitedWithAllOutput && Output.Contains("already in use (by another raftkvd, or another program); nothing was started or written", StringComparison.Ordinal);

    public static string ServerDll => Path.Combine(AppContext.BaseDirectory, "raftkvd.dll");

    /// <summary>Starts raftkvd with the given flags (the data dir goes last), on fresh ports unless given.</summary>
    public static RaftkvdProcess Start(string name, string dataDir, IEnumerable<string> extraArgs, int? httpPort = null, int? raftPort = null)
    {
        var http = httpPort ?? FreePorts.Pick();
        var raft = raftPort ?? FreePorts.Pick();
        var psi = new ProcessStartInfo("dotnet")
        {
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.ArgumentList.Add(ServerDll);
        foreach (var a in new[] { "-id", name, "-haddr", $"127.0.0.1:{http}", "-raddr", $"127.0.0.1:{raft}", "-v" }) psi.ArgumentList.Add(a);
        foreach (var a in extraArgs) psi.ArgumentList.Add(a);
        psi.ArgumentList.Add(dataDir);
        var p = new Process { StartInfo = psi };
        var node = new RaftkvdProcess(p, name, http, raft, dataDir);
        p.OutputDataReceived += (_, e) => node.Append(e.Data);
        p.ErrorDataReceived += (_, e) => node.Append(e.Data);
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return node;
    }

    private void Append(string? line)
    {
        if (line is null) return;
        lock (_output) _output.AppendLine(line);
    }

    /// <summary>kill -9: no shutdown, no flush beyond what was fsynced.</summary>
    public void Kill()
    {
        try
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit(10_000);
        }
        catch (InvalidOperationException)
        {
        }
    }

    public void Dispose()
    {
        Kill();
        _process.Dispose();
    }
}
