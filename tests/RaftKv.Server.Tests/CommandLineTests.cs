using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using RaftKv.Node;
using RaftKv.Server.CommandLine;
using RaftKv.Server.Hosting;
using RaftKv.Shared;

namespace RaftKv.Server.Tests;

/// <summary>raftkvd's flags: hraftd's spellings, long forms, the fork's, defaults, usage errors (exit 2, one line), --help.</summary>
public sealed class CommandLineTests
{
    /// <summary>
    /// <paramref name="args"/> with HTTP and raft on free ports: the daemon checks its ports before its data directory,
    /// so a test about the directory must not depend on the default ports being free on the machine.
    /// </summary>
    internal static string[] OnFreePorts(params string[] args) =>
        ["-haddr", $"127.0.0.1:{FreePorts.Pick()}", "-raddr", $"127.0.0.1:{FreePorts.Pick()}", .. args];

    private static DaemonOptions Parse(params string[] args)
    {
        var outcome = new DaemonCommandLine().Parse(args);
        Assert.True(outcome.Error is null, outcome.Error);
        return outcome.Options!;
    }

    [Fact]
    public void Defaults_are_hraftds()
    {
        var o = Parse("/data");
        Assert.Equal("/data", o.DataDirectory);
        Assert.Equal("localhost:11000", o.HttpAddress);
        Assert.Equal("localhost:12000", o.RaftAddress);
        Assert.Equal("localhost:12000", o.Id); // the raft address
        Assert.Equal("localhost:11000", o.HttpAdvertiseAddress);
        Assert.Empty(o.Join);
        Assert.False(o.InMemory);
        Assert.Equal(TimeSpan.FromMilliseconds(100), o.HeartbeatTimeout);
        Assert.Equal(TimeSpan.FromSeconds(1), o.ElectionTimeout);
        Assert.Equal(8192, o.SnapshotThreshold);
        Assert.Equal(10240, o.TrailingLogs);
        Assert.Equal(TimeSpan.FromMinutes(2), o.SnapshotInterval);
        Assert.Equal(TimeSpan.FromSeconds(5), o.RequestTimeout);
        Assert.Equal(1L << 20, o.MaxBodyBytes);
        Assert.Equal(LogLevel.Warning, o.LogLevel);
    }

    [Fact]
    public void Hraftd_single_dash_flags()
    {
        var o = Parse("-id", "node1", "-haddr", "localhost:11001", "-raddr", "localhost:12001", "-join", ":11000", "-inmem", "/node1");
        Assert.Equal("node1", o.Id);
        Assert.Equal("localhost:11001", o.HttpAddress);
        Assert.Equal("localhost:12001", o.RaftAddress);
        Assert.Equal(["localhost:11000"], o.Join);
        Assert.True(o.InMemory);
        Assert.Equal("/node1", o.DataDirectory);
    }

    [Fact]
    public void Raftd_port_flag_and_a_raft_port_1000_above_it()
    {
        // goraft/raftd's walkthrough: raftd -p 4002 -join localhost:4001 ~/node.2
        var o = Parse("-p", "4002", "-join", "localhost:4001", "/node.2");
        Assert.Equal("localhost:4002", o.HttpAddress);
        Assert.Equal("localhost:5002", o.RaftAddress);
        Assert.Equal(["localhost:4001"], o.Join);
        Assert.Equal("/node.2", o.DataDirectory);
    }

    [Fact]
    public void Fork_walkthrough_needs_no_raft_address_or_data_directory()
    {
        // The fork's walkthrough: hraftd --rjoin :11000 --haddr :11001 (and nothing else).
        var o = Parse("--rjoin", ":11000", "--haddr", ":11001");
        Assert.Equal(":11001", o.HttpAddress);
        Assert.Equal("localhost:12001", o.RaftAddress); // raft stays on loopback unless asked: it has no authentication
        Assert.Equal("localhost:12001", o.RaftAdvertiseAddress);
        Assert.Equal("localhost:12001", o.Id);
        Assert.Equal("raftkvd-11001", o.DataDirectory);
        Assert.Equal(["localhost:11000"], o.Join);
    }

    [Theory]
    [InlineData("127.0.0.1:8001", "127.0.0.1:9001")]
    [InlineData("[::1]:8001", "[::1]:9001")]
    [InlineData("node1.example:11000", "node1.example:12000")]
    [InlineData(":64535", "localhost:65535")]
    [InlineData(":11000", "localhost:12000")]          // a wildcard HTTP bind keeps the old default raft address (and id)
    [InlineData("0.0.0.0:11000", "localhost:12000")]
    [InlineData("[::]:11000", "localhost:12000")]
    [InlineData(":64536", null)]
    public void Default_raft_address_is_1000_above_the_http_port(string http, string? raft) =>
        Assert.Equal(raft, DaemonCommandLine.DefaultRaftAddress(http));

    [Fact]
    public void Long_forms_and_equals_syntax()
    {
        var o = Parse("--id=n2", "--http-addr=127.0.0.1:8001", "--raft-addr", "127.0.0.1:9001", "--http-adv-addr", "h2:8001",
            "--raft-adv-addr", "h2:9001", "--join", "h1:8000,h3:8000", "--inmem", "--heartbeat-timeout", "50ms",
            "--election-timeout", "1.5s", "--snapshot-threshold", "100", "--trailing-logs", "0", "--snapshot-interval", "1m30s",
            "--request-timeout", "250ms", "--max-body", "512KiB", "/d");
        Assert.Equal("n2", o.Id);
        Assert.Equal("127.0.0.1:8001", o.HttpAddress);
        Assert.Equal("h2:8001", o.HttpAdvertiseAddress);
        Assert.Equal("h2:9001", o.RaftAdvertiseAddress);
        Assert.Equal(["h1:8000", "h3:8000"], o.Join);
        Assert.Equal(TimeSpan.FromMilliseconds(50), o.HeartbeatTimeout);
        Assert.Equal(TimeSpan.FromMilliseconds(1500), o.ElectionTimeout);
        Assert.Equal(100, o.SnapshotThreshold);
        Assert.Equal(0, o.TrailingLogs);
        Assert.Equal(TimeSpan.FromSeconds(90), o.SnapshotInterval);
        Assert.Equal(TimeSpan.FromMilliseconds(250), o.RequestTimeout);
        Assert.Equal(512 * 1024, o.MaxBodyBytes);

        var node = o.ToNodeOptions(bootstrap: false);
        Assert.Equal("h2:9001", node.RaftAddress);
        Assert.Equal("127.0.0.1:9001", node.RaftBindAddress);
        Assert.Equal("h2:8001", node.HttpAdvertiseAddress);
        Assert.Equal(TimeSpan.FromMilliseconds(250), node.RequestTimeout);
        Assert.False(node.ForwardToLeader); // the server forwards over HTTP
        Assert.True(node.InlineCompletions); // its handlers never block after awaiting the node
    }

    [Fact]
    public void Fork_spellings_and_default_id_from_advertised_raft_address()
    {
        var o = Parse("--rjoin", ":11000", "--haddr", ":11001", "--raddr", ":12001", "/d");
        Assert.Equal(["localhost:11000"], o.Join);
        Assert.Equal(":11001", o.HttpAddress);
        Assert.Equal("localhost:11001", o.HttpAdvertiseAddress);
        Assert.Equal("localhost:12001", o.Id);
        Assert.Equal(["localhost:11000"], Parse("-rjoin", "http://localhost:11000/", "/d").Join);
        Assert.Equal(["a:1", "b:2"], Parse("-join", "a:1", "-join", "b:2", "-raddr", "c:12000", "/d").Join);
    }

    [Fact]
    public async Task Fork_multi_host_command_with_raft_on_localhost_exits_2_naming_the_flags()
    {
        // The fork's multi-host walkthrough: every host would claim raft address and id localhost:12000.
        var stderr = new StringWriter();
        var code = await Daemon.RunAsync(["--rjoin", "host1.example:11000", "--haddr", ":11000"],
            (_, _, _) => throw new InvalidOperationException("must not start"), TextWriter.Null, stderr, default, NullLoggerFactory.Instance);
        Assert.Equal(2, code);
        var error = stderr.ToString();
        Assert.Contains("-join host1.example:11000 is on another host", error);
        Assert.Contains("localhost:12000 can only be reached from this machine", error);
        Assert.Contains("--raft-addr <this host's IP>:12000", error);
    }

    [Fact]
    public void Wildcard_http_bind_advertises_the_raft_host_when_raft_is_reachable_from_other_hosts()
    {
        var o = Parse("--rjoin", "10.0.0.4:11000", "--haddr", ":11000", "--raft-addr", "10.0.0.5:12000", "/d");
        Assert.Equal("10.0.0.5:11000", o.HttpAdvertiseAddress);
        Assert.Equal("10.0.0.5:12000", o.Id);
        var both = Parse("-haddr", "0.0.0.0:11000", "-raddr", "0.0.0.0:12000", "--raft-adv-addr", "[fd00::5]:12000", "/d");
        Assert.Equal("[fd00::5]:11000", both.HttpAdvertiseAddress);
        // The founder of the fork's multi-host cluster, once told its address, does not try to join itself.
        var founder = Parse("--rjoin", "10.0.0.5:11000", "--haddr", ":11000", "--raft-addr", "10.0.0.5:12000", "/d");
        Assert.Empty(founder.JoinTargetsExcludingSelf());
        // With raft local-only, the HTTP side may say localhost too: no other host can be a member anyway.
        Assert.Equal("localhost:11000", Parse("--haddr", ":11000", "/d").HttpAdvertiseAddress);
    }

    [Theory]
    [InlineData("1048576", 1048576)]
    [InlineData("1MiB", 1048576)]
    [InlineData("1M", 1048576)]
    [InlineData("1MB", 1000000)]
    [InlineData("64KiB", 65536)]
    public void Max_body_sizes(string text, long bytes) => Assert.Equal(bytes, Parse("--max-body", text, "/d").MaxBodyBytes);

    [Fact]
    public void Queue_bounds_reach_the_node()
    {
        var node = Parse("--max-queued-requests", "50", "--max-queued-bytes", "1MiB", "/d").ToNodeOptions(bootstrap: false);
        Assert.Equal(50, node.MaxQueuedRequests);
        Assert.Equal(1048576, node.MaxQueuedBytes);
        var defaults = Parse("/d").ToNodeOptions(bootstrap: false);
        Assert.Equal(NodeOptions.DefaultMaxQueuedRequests, defaults.MaxQueuedRequests);
        Assert.Equal(NodeOptions.DefaultMaxQueuedBytes, defaults.MaxQueuedBytes);
    }

    [Theory]
    [InlineData("-v", LogLevel.Information)]
    [InlineData("--verbose", LogLevel.Information)]
    [InlineData("-debug", LogLevel.Debug)]
    [InlineData("-trace", LogLevel.Trace)]
    public void Logging_switches(string flag, LogLevel level) => Assert.Equal(level, Parse(flag, "/d").LogLevel);

    [Theory]
    [InlineData("--bogus", "/d")]
    [InlineData("-haddr", "nonsense", "/d")]
    [InlineData("--heartbeat-timeout", "5", "/d")]
    [InlineData("--heartbeat-timeout", "5x", "/d")]
    [InlineData("--election-timeout", "50ms", "/d")]          // not longer than the heartbeat
    [InlineData("--max-body", "lots", "/d")]
    [InlineData("--max-body", "0", "/d")]
    [InlineData("--max-body", "200MiB", "/d")]                 // a write that large could never be replicated
    [InlineData("--max-body", "64MiB", "/d")]                  // the frame itself: no room for the key and the message
    [InlineData("--max-queued-requests", "0", "/d")]
    [InlineData("--max-queued-bytes", "0", "/d")]
    [InlineData("--max-queued-bytes", "lots", "/d")]
    [InlineData("--snapshot-threshold", "0", "/d")]
    [InlineData("--snapshot-threshold", "many", "/d")]
    [InlineData("-join", "nope", "/d")]
    [InlineData("-haddr", "localhost:0", "/d")]                // other nodes could not know the port
    [InlineData("-raddr", ":0", "/d")]
    [InlineData("--raft-adv-addr", "h:0", "/d")]
    [InlineData("-join", "a b:11000", "/d")]                  // would fail only later, at each join attempt
    [InlineData("-join", "127.0.0.1:+11000", "/d")]
    [InlineData("-haddr", "127.0.0.1: 11000", "/d")]
    [InlineData("--http-adv-addr", "a b:80", "/d")]
    [InlineData("--raft-adv-addr", "x/y?z:80", "/d")]
    [InlineData("--raft-adv-addr", ":12000", "/d")]            // other nodes need a host to dial
    [InlineData("-haddr", "127.0.0.1:11000", "-raddr", "localhost:11000", "/d")]
    [InlineData("-haddr", ":11000", "-raddr", "127.0.0.1:11000", "/d")]
    [InlineData("--id", "a\nb", "/d")]
    [InlineData("--request-timeout", "2000h", "/d")]           // past what the timers take
    [InlineData("--heartbeat-timeout", "25h", "--election-timeout", "26h", "/d")]
    [InlineData("-id")]
    [InlineData("-p", "0", "/d")]
    [InlineData("-p", "70000", "/d")]
    [InlineData("-p", "4001", "-haddr", "localhost:4001", "/d")] // two answers to one question
    [InlineData("-haddr", "localhost:65000", "/d")]            // no raft port 1000 above it
    [InlineData("-inmen")]                                     // a mistyped flag is not a data directory
    [InlineData("-p", "4001", "--verbos")]
    [InlineData("--raft-adv-addr", "0.0.0.0:12000", "/d")]     // every node would dial itself
    [InlineData("-join", "0.0.0.0:11000", "/d")]
    [InlineData("/a", "/b")]
    [InlineData("--rjoin", "10.0.0.4:11000", "--haddr", ":11001")]  // raft on localhost cannot join another host
    [InlineData("-join", "node0.example:11000", "-raddr", "127.0.0.1:12001", "-haddr", "127.0.0.1:11001", "/d")]
    public async Task Usage_errors_exit_2_with_one_line_and_start_nothing(params string[] args)
    {
        var started = false;
        var stdout = new StringWriter();
        var stderr = new StringWriter();
        // Stops a daemon that wrongly accepted the flags: the test then fails instead of serving forever.
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var code = await Daemon.RunAsync(args, (_, _, _) => { started = true; return Task.FromResult<RaftKv.Node.IKvNode>(new FakeKvNode()); },
            stdout, stderr, stop.Token, NullLoggerFactory.Instance);
        Assert.Equal(2, code);
        Assert.False(started);
        Assert.Equal("", stdout.ToString());
        var lines = stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("raftkvd: ", lines[0]);
    }

    /// <summary>The node's own rules (NodeOptions.FindProblem) are told in flags, in the words the flags have always used.</summary>
    [Theory]
    [InlineData("--election-timeout must be longer than --heartbeat-timeout", "--election-timeout", "50ms", "/d")]
    [InlineData("--election-timeout must be longer than --heartbeat-timeout", "--heartbeat-timeout", "2s", "/d")]
    [InlineData("--id: a node id must not contain control characters (newlines, tabs...)", "--id", "a\tb", "/d")]
    [InlineData("--id: a node id must not be empty", "--id", " ", "/d")]
    [InlineData("--raft-adv-addr: \":12000\" needs a host other nodes can reach (a name or an IP)", "--raft-adv-addr", ":12000", "/d")]
    [InlineData("--raft-adv-addr: \"h:0\" needs a fixed port (0 would pick one other nodes cannot know)", "--raft-adv-addr", "h:0", "/d")]
    [InlineData("--http-adv-addr: \"a b:80\" is not a host:port address", "--http-adv-addr", "a b:80", "/d")]
    [InlineData("--snapshot-threshold must be positive", "--snapshot-threshold", "0", "/d")]
    public void Usage_errors_say_what_they_always_said(string error, params string[] args) =>
        Assert.Equal(error, new DaemonCommandLine().Parse(args).Error);

    [Fact]
    public async Task A_max_body_above_what_can_be_replicated_exits_2_naming_the_largest()
    {
        var stderr = new StringWriter();
        var code = await Daemon.RunAsync(["--max-body", (ServerOptions.LargestMaxBodyBytes + 1).ToString(CultureInfo.InvariantCulture), "/d"],
            (_, _, _) => throw new InvalidOperationException("must not start"), TextWriter.Null, stderr, default, NullLoggerFactory.Instance);
        Assert.Equal(2, code);
        Assert.Contains($"the largest --max-body is {ServerOptions.LargestMaxBodyBytes} bytes", stderr.ToString());
        // The largest itself is accepted, and a body that size with the longest key still fits one raft message.
        Assert.Equal(ServerOptions.LargestMaxBodyBytes, Parse("--max-body", ServerOptions.LargestMaxBodyBytes.ToString(CultureInfo.InvariantCulture), "/d").MaxBodyBytes);
        Assert.True(ServerOptions.LargestMaxBodyBytes + ServerOptions.DefaultMaxKeyBytes + RaftKv.Node.EntryLimits.SinglePairOverheadBytes
                    <= RaftKv.Node.EntryLimits.MaxEntryBytes(RaftKv.Node.Transport.TransportOptions.Default.MaxFrameSize));
    }

    [Fact]
    public async Task An_id_longer_than_the_transport_carries_exits_2() =>
        await Usage_errors_exit_2_with_one_line_and_start_nothing("--id", new string('i', RaftKv.Node.NodeIds.MaxBytes + 1), "/d");

    [Fact]
    public async Task Unknown_flag_is_named()
    {
        var stderr = new StringWriter();
        await Daemon.RunAsync(["--bogus", "/d"], (_, _, _) => throw new InvalidOperationException(), TextWriter.Null, stderr, default, NullLoggerFactory.Instance);
        Assert.Contains("unknown flag --bogus", stderr.ToString());
    }

    [Fact]
    public async Task Data_directory_that_is_a_file_or_under_a_file_exits_2()
    {
        var file = Path.GetTempFileName();
        try
        {
            foreach (var dir in new[] { file, Path.Combine(file, "sub") })
            {
                var stderr = new StringWriter();
                var code = await Daemon.RunAsync(OnFreePorts(dir), (_, _, _) => throw new InvalidOperationException("must not start"),
                    TextWriter.Null, stderr, default, NullLoggerFactory.Instance);
                Assert.Equal(2, code);
                Assert.Contains(dir, stderr.ToString());
                Assert.Single(stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
            }
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Theory]
    [InlineData(true, false)]   // hraftd stopped before its first snapshot: only raft.db
    [InlineData(false, true)]   // raft.db removed, its snapshot left: raftkvd saw "existing state" and answered 503 forever
    [InlineData(true, true)]
    public async Task An_hraftd_data_directory_exits_2_and_is_left_untouched(bool boltFile, bool snapshot)
    {
        var dir = Path.Combine(Path.GetTempPath(), "raftkvd-hraftd-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            if (boltFile) File.WriteAllBytes(Path.Combine(dir, "raft.db"), new byte[4096]);
            if (snapshot)
            {
                var folder = Path.Combine(dir, "snapshots", "2-18-1700000000000");
                Directory.CreateDirectory(folder);
                File.WriteAllText(Path.Combine(folder, "meta.json"), """{"Version":1,"ID":"2-18-1700000000000","Index":18,"Term":2}""");
                File.WriteAllText(Path.Combine(folder, "state.bin"), "{}");
            }
            var before = Directory.GetFileSystemEntries(dir, "*", SearchOption.AllDirectories).Order().ToList();
            var stderr = new StringWriter();
            var code = await Daemon.RunAsync(OnFreePorts(dir), (_, _, _) => throw new InvalidOperationException("must not start"),
                TextWriter.Null, stderr, default, NullLoggerFactory.Instance);
            Assert.Equal(2, code);
            Assert.Contains("holds hraftd's raft state", stderr.ToString());
            Assert.Contains(boltFile ? "raft.db" : "meta.json", stderr.ToString());
            Assert.Equal(before, Directory.GetFileSystemEntries(dir, "*", SearchOption.AllDirectories).Order().ToList());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Theory]
    [InlineData("wal", false)]
    [InlineData("snapshots", false)]
    [InlineData("LOCK", true)]
    public async Task A_data_directory_whose_parts_have_the_wrong_kind_exits_2(string part, bool directory)
    {
        var dir = Path.Combine(Path.GetTempPath(), "raftkvd-kind-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            if (directory) Directory.CreateDirectory(Path.Combine(dir, part));
            else await File.WriteAllTextAsync(Path.Combine(dir, part), "");
            var stderr = new StringWriter();
            var code = await Daemon.RunAsync(OnFreePorts(dir), (_, _, _) => throw new InvalidOperationException("must not start"),
                TextWriter.Null, stderr, default, NullLoggerFactory.Instance);
            Assert.Equal(2, code);
            Assert.Contains(part + " must be a " + (directory ? "file" : "directory"), stderr.ToString());
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task An_http_address_not_on_this_machine_exits_1_before_anything_is_written()
    {
        var dir = Path.Combine(Path.GetTempPath(), "raftkvd-addr-" + Guid.NewGuid().ToString("N"));
        var stderr = new StringWriter();
        // 192.0.2.0/24 is TEST-NET-1: never an address of this machine.
        var code = await Daemon.RunAsync(["-haddr", "192.0.2.1:11000", dir], (_, _, _) => throw new InvalidOperationException("must not start"),
            TextWriter.Null, stderr, default, NullLoggerFactory.Instance);
        Assert.Equal(1, code);
        Assert.Contains("192.0.2.1 is not an address of this machine", stderr.ToString());
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public async Task Help_lists_every_flag_with_defaults()
    {
        var stdout = new StringWriter();
        var code = await Daemon.RunAsync(["--help"], (_, _, _) => throw new InvalidOperationException(), stdout, TextWriter.Null, default, NullLoggerFactory.Instance);
        Assert.Equal(0, code);
        var help = stdout.ToString();
        foreach (var flag in new[] { "-id", "--id", "-haddr", "--http-addr", "--haddr", "-raddr", "--raft-addr", "--raddr", "-join", "--join", "--rjoin",
                     "-inmem", "--http-adv-addr", "--raft-adv-addr", "--heartbeat-timeout", "--election-timeout", "--snapshot-threshold",
                     "--trailing-logs", "--snapshot-interval", "--request-timeout", "--max-body", "-v", "-debug", "-trace", "-p", "<data-dir>" })
        {
            Assert.Contains(flag, help);
        }
        foreach (var value in new[] { "localhost:11000", "100ms", "8192", "10240", "2m", "5s", "1MiB" })
        {
            Assert.Contains("[default: " + value + "]", help);
        }
        Assert.Contains("port + 1000: localhost:12000]", help);
        Assert.Contains("[default: raftkvd-<HTTP port> in the current directory]", help);
    }
}

/// <summary>Durations, sizes, addresses and raw path keys.</summary>
public sealed class ValueParsingTests
{
    [Theory]
    [InlineData("100ms", 100)]
    [InlineData("1s", 1000)]
    [InlineData("2m", 120_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("1m30s", 90_000)]
    [InlineData("1.5s", 1500)]
    [InlineData("500us", 0.5)]
    [InlineData("500\u00b5s", 0.5)]
    [InlineData("500\u03bcs", 0.5)]
    [InlineData("1500000ns", 1.5)]
    [InlineData("0", 0)]
    [InlineData("0s", 0)]
    [InlineData(" 2s ", 2000)]
    [InlineData(".5s", 500)]
    [InlineData("1h2m3s4ms", 3_723_004)]
    [InlineData("1s1s", 2000)]
    [InlineData("0.001ms", 0.001)]
    [InlineData("24h", 86_400_000)]
    [InlineData("0.3s", 300)]
    [InlineData("1.1s", 1100)]
    public void Go_durations(string text, double milliseconds)
    {
        Assert.True(Durations.TryParse(text, out var value, out var error), error);
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), value);
        Assert.Null(error);
    }

    [Theory]
    [InlineData("", "empty duration")]
    [InlineData("   ", "empty duration")]
    [InlineData(null, "empty duration")]
    [InlineData("5", "duration \"5\" has no unit (write 5s or 5ms; units: ns, us, ms, s, m, h)")]
    [InlineData("30", "duration \"30\" has no unit (write 30s or 30ms")]
    [InlineData("1m30", "duration \"1m30\" has no unit (write 30s or 30ms")]
    [InlineData("ms", "invalid duration \"ms\"")]
    [InlineData("-1s", "invalid duration \"-1s\"")]
    [InlineData("+1s", "invalid duration \"+1s\"")]
    [InlineData("1.2.3s", "invalid duration \"1.2.3s\"")]
    [InlineData("5 parsecs", "unknown unit \" parsecs\" in duration \"5 parsecs\"")]
    [InlineData("5S", "unknown unit \"S\"")]
    [InlineData("1d", "unknown unit \"d\"")]
    [InlineData("1e3s", "unknown unit \"e\"")]
    [InlineData("99999999999999h", "duration \"99999999999999h\" is too long")]
    public void Bad_durations_say_what_is_wrong(string? text, string error)
    {
        Assert.False(Durations.TryParse(text, out var value, out var message));
        Assert.Equal(TimeSpan.Zero, value);
        Assert.StartsWith(error, message);
    }

    [Theory]
    [InlineData("0", "0s")]
    [InlineData("100ms", "100ms")]
    [InlineData("1.5s", "1.5s")]
    [InlineData("2m", "2m0s")]
    [InlineData("1h30m", "1h30m0s")]
    [InlineData("36h", "36h0m0s")]
    [InlineData("250us", "0.25ms")]
    public void Durations_format_the_way_go_prints_them_and_parse_back(string text, string formatted)
    {
        Assert.True(Durations.TryParse(text, out var value, out _));
        Assert.Equal(formatted, Durations.Format(value));
        Assert.True(Durations.TryParse(formatted, out var again, out _));
        Assert.Equal(value, again);
    }

    [Theory]
    [InlineData(":11000", "localhost:11000")]
    [InlineData("http://h:1/", "h:1")]
    [InlineData(" h:2 ", "h:2")]
    public void Join_addresses_normalize(string input, string expected) => Assert.Equal(expected, HostPort.Normalize(input));

    [Theory]
    [InlineData(":11000", "localhost:11000", true)]
    [InlineData("127.0.0.1:11000", "localhost:11000", true)]
    [InlineData("localhost:11001", "localhost:11000", false)]
    [InlineData("h1:11000", "h2:11000", false)]
    public void Same_endpoint(string a, string b, bool same) => Assert.Equal(same, HostPort.SameEndpoint(a, b));

    [Theory]
    [InlineData("/key/a%2Fb", "key", "a/b")]
    [InlineData("/hraftd/key/a%252F?level=none", "key", "a%2F")]
    [InlineData("/KEY/x/y", "key", "x/y")]
    [InlineData("/key/", "key", "")]
    [InlineData("/db/a+b", "db", "a+b")]
    [InlineData("/other/a", "key", null)]
    [InlineData("/key/caf%C3%A9%20au%20lait", "key", "café au lait")]
    [InlineData("/key/%e2%82%ac-%25", "key", "€-%")]
    public void Raw_path_keys(string raw, string segment, string? key) => Assert.Equal(key, Web.RequestKeysFromRaw(raw, segment));

    [Theory]
    [InlineData("/key/%ff")]          // not UTF-8 (was stored as the literal "%ff", the same key as /key/%25ff)
    [InlineData("/key/%c3%28")]
    [InlineData("/key/%")]
    [InlineData("/key/a%")]
    [InlineData("/key/a%2")]
    [InlineData("/key/a%zz")]
    [InlineData("/db/%ed%a0%80")]     // an encoded surrogate
    public void Malformed_percent_encoding_is_400(string raw)
    {
        var e = Assert.Throws<RaftKv.Server.Http.RequestException>(() => Web.RequestKeysFromRaw(raw, raw.Split('/')[1]));
        Assert.Equal(400, e.Status);
    }
}
