using System.Net;
using RaftKv.Node;
using RaftKv.Raft;
using RaftKv.Server.Hosting;
using RaftKv.Storage;

namespace RaftKv.Server.Tests;

/// <summary>The whole raftkvd path with a fake node: bootstrap decision, joining, graceful stop.</summary>
public sealed class DaemonTests : IDisposable
{
    private readonly string _dataDir = Path.Combine(Path.GetTempPath(), "raftkvd-test-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_dataDir))
        {
            Directory.Delete(_dataDir, recursive: true);
        }
    }

    /// <summary>Runs the daemon in the background with a fake node; the test stops it through the token.</summary>
    private sealed class Run
    {
        public FakeKvNode Node { get; } = new("joiner");
        public NodeOptions? Options { get; private set; }
        public StringWriter Stdout { get; } = new();
        public StringWriter Stderr { get; } = new();
        public LogCapture Logs { get; } = new();
        public CancellationTokenSource Stop { get; } = new();
        public Task<int> Exit { get; private set; } = Task.FromResult(-1);
        public string HttpAddress { get; set; } = $"127.0.0.1:{FreePorts.Pick()}";

        // Free, like the HTTP port: the daemon checks it can listen there (a port below 1024 would need root).
        public string RaftAddress { get; } = $"127.0.0.1:{FreePorts.Pick()}";

        public Run Start(params string[] args)
        {
            Exit = Task.Run(() => Daemon.RunAsync(["-haddr", HttpAddress, "-raddr", RaftAddress, .. args], (options, _, _) =>
            {
                Options = options;
                return Task.FromResult<IKvNode>(Node);
            }, Stdout, Stderr, Stop.Token, Logs));
            return this;
        }

        public async Task<int> StopAsync()
        {
            await Stop.CancelAsync();
            return await Exit.WaitAsync(TimeSpan.FromSeconds(15));
        }

        public async Task WaitServingAsync()
        {
            using var client = new HttpClient();
            await RunningServer.WaitUntilAsync(async () =>
            {
                Assert.False(Exit.IsCompleted, $"daemon exited: {Stderr}");
                try
                {
                    return (await client.GetAsync($"http://{HttpAddress}/livez")).StatusCode == HttpStatusCode.OK;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            }, "the daemon to serve HTTP");
        }
    }

    [Fact]
    public async Task First_node_without_join_bootstraps_and_stops_gracefully()
    {
        var run = new Run().Start(_dataDir);
        await run.WaitServingAsync();
        Assert.True(run.Options!.Bootstrap);
        Assert.Equal(run.RaftAddress, run.Options.Id);
        Assert.Contains("bootstrapping a new cluster", run.Stdout.ToString());

        Assert.Equal(0, await run.StopAsync());
        Assert.True(run.Node.Disposed);
    }

    [Fact]
    public async Task A_node_that_fails_ends_the_daemon_with_a_one_line_reason_and_a_nonzero_code()
    {
        var run = new Run().Start(_dataDir);
        await run.WaitServingAsync();

        run.Node.Failure.SetResult("the raft loop failed: IOException: No space left on device");
        var code = await run.Exit.WaitAsync(TimeSpan.FromSeconds(15));

        Assert.Equal(Daemon.NodeFailed, code);
        var line = Assert.Single(run.Stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("the node stopped: the raft loop failed: IOException: No space left on device", line);
        Assert.True(run.Node.Disposed);
    }

    /// <summary>The same with a real node whose WAL flush fails (as on a full disk): the daemon does not linger.</summary>
    [Fact]
    public async Task A_real_node_whose_disk_fails_ends_the_daemon()
    {
        var failDisk = false;
        var httpAddress = $"127.0.0.1:{FreePorts.Pick()}";
        var stderr = new StringWriter();
        var exit = Task.Run(() => Daemon.RunAsync(["-haddr", httpAddress, "-raddr", $"127.0.0.1:{FreePorts.Pick()}", _dataDir], async (options, logs, ct) =>
            await KvNode.StartAsync(options with
            {
                WalFlushForTests = sync =>
                {
                    if (Volatile.Read(ref failDisk)) throw new IOException("No space left on device (simulated)");
                    sync.Flush();
                },
            }, logs, ct), TextWriter.Null, stderr, CancellationToken.None, new LogCapture()));
        using var client = new HttpClient { BaseAddress = new Uri($"http://{httpAddress}") };
        await RunningServer.WaitUntilAsync(async () =>
        {
            Assert.False(exit.IsCompleted, $"daemon exited: {stderr}");
            try
            {
                return (await client.PostAsync("/key", new StringContent("""{"a":"1"}"""))).IsSuccessStatusCode;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }, "a first write");

        Volatile.Write(ref failDisk, true);
        var write = await client.PostAsync("/key", new StringContent("""{"b":"2"}"""));
        Assert.False(write.IsSuccessStatusCode);

        Assert.Equal(Daemon.NodeFailed, await exit.WaitAsync(TimeSpan.FromSeconds(30)));
        var line = Assert.Single(stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("No space left on device (simulated)", line);
    }

    /// <summary>A real node whose disk stalls: writes beyond the queue bound get 503 "busy" with Retry-After at once.</summary>
    [Fact]
    public async Task Writes_beyond_the_queue_bound_of_a_stalled_node_get_503_busy_with_Retry_After()
    {
        var hang = false;
        using var gate = new ManualResetEventSlim(false);
        using var hung = new ManualResetEventSlim(false);
        var httpAddress = $"127.0.0.1:{FreePorts.Pick()}";
        using var stop = new CancellationTokenSource();
        KvNode? node = null;
        var exit = Task.Run(() => Daemon.RunAsync(["-haddr", httpAddress, "-raddr", $"127.0.0.1:{FreePorts.Pick()}", "--request-timeout", "30s", _dataDir], async (options, logs, ct) =>
            node = await KvNode.StartAsync(options with
            {
                MaxQueuedRequests = 3,
                WalFlushForTests = sync =>
                {
                    if (Volatile.Read(ref hang))
                    {
                        hung.Set();
                        gate.Wait(TimeSpan.FromSeconds(60));
                    }
                    sync.Flush();
                },
            }, logs, ct), TextWriter.Null, TextWriter.Null, stop.Token, new LogCapture()));
        try
        {
            using var client = new HttpClient { BaseAddress = new Uri($"http://{httpAddress}"), Timeout = TimeSpan.FromSeconds(60) };
            await RunningServer.WaitUntilAsync(async () =>
            {
                Assert.False(exit.IsCompleted, "the daemon exited");
                try
                {
                    return (await client.PostAsync("/key", new StringContent("""{"a":"1"}"""))).IsSuccessStatusCode;
                }
                catch (HttpRequestException)
                {
                    return false;
                }
            }, "a first write");

            Volatile.Write(ref hang, true);
            // One write waits for the hung flush, three in the queue; the next finds the queue full.
            var waiting = new List<Task<HttpResponseMessage>> { client.PostAsync("/key", new StringContent("""{"w":"first"}""")) };
            Assert.True(await Task.Run(() => hung.Wait(TimeSpan.FromSeconds(15))), "no flush hung");
            waiting.AddRange(Enumerable.Range(0, 3).Select(i => client.PostAsync("/key", new StringContent($$"""{"w{{i}}":"v"}"""))));
            await RunningServer.WaitUntilAsync(() => node!.Loop.QueuedRequests == 3, "three writes to wait in the queue");
            var busy = await client.PostAsync("/key", new StringContent("""{"over":"bound"}"""));
            Assert.Contains("too many requests are waiting", await busy.AssertErrorAsync(HttpStatusCode.ServiceUnavailable));
            Assert.NotNull(busy.Headers.RetryAfter);

            gate.Set();
            foreach (var r in await Task.WhenAll(waiting)) Assert.True(r.IsSuccessStatusCode, $"a queued write got {r.StatusCode}");
            Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/key/over")).StatusCode);
        }
        finally
        {
            gate.Set();
            await stop.CancelAsync();
            await exit.WaitAsync(TimeSpan.FromSeconds(60));
        }
    }

    [Fact]
    public async Task Files_that_are_not_node_state_do_not_stop_a_first_node_bootstrapping()
    {
        // A fresh volume's lost+found, or a note left by an operator, is not a node's state.
        Directory.CreateDirectory(Path.Combine(_dataDir, "lost+found"));
        await File.WriteAllTextAsync(Path.Combine(_dataDir, "notes.txt"), "node 1");
        var run = new Run().Start(_dataDir);
        await run.WaitServingAsync();
        Assert.True(run.Options!.Bootstrap);
        Assert.Contains("bootstrapping a new cluster", run.Stdout.ToString());
        Assert.Equal(0, await run.StopAsync());
    }

    [Fact]
    public async Task Inmem_says_writes_are_not_durable()
    {
        var run = new Run().Start("-inmem", _dataDir);
        await run.WaitServingAsync();
        Assert.True(run.Options!.InMemory);
        Assert.Contains("not durable", run.Stderr.ToString(), StringComparison.OrdinalIgnoreCase);
        Assert.False(Directory.Exists(_dataDir)); // nothing written for an in-memory node
        Assert.Equal(0, await run.StopAsync());
    }

    [Fact]
    public async Task Fresh_node_joins_through_the_first_address_that_accepts()
    {
        await using var leader = await RunningServer.StartAsync(new FakeKvNode("leader"));
        var unreachable = $"127.0.0.1:{FreePorts.Pick()}";
        var run = new Run().Start("-id", "n2", "--raft-adv-addr", "r2:12000", "-join", $"{unreachable},{leader.Address}", _dataDir);

        await RunningServer.WaitUntilAsync(() => !leader.Node.Joins.IsEmpty, "the join to reach the leader");
        Assert.False(run.Options!.Bootstrap);
        var join = Assert.Single(leader.Node.Joins);
        Assert.Equal(("n2", "r2:12000", run.HttpAddress, true), join);
        await RunningServer.WaitUntilAsync(() => run.Logs.Messages.Any(m => m.Contains("Joined the cluster")), "the join to be logged");
        // Success is news, not a warning (-v shows it; the default, warnings only, does not).
        Assert.Equal(LogLevel.Information, run.Logs.Lines.First(l => l.Text.Contains("Joined the cluster")).Level);
        Assert.Contains(run.Logs.Messages, m => m.Contains("Join through " + unreachable + " failed"));
        Assert.Equal(0, await run.StopAsync());
    }

    [Fact]
    public async Task A_join_the_cluster_refuses_as_such_is_not_retried()
    {
        var refusals = 0;
        await using var leader = await RunningServer.StartAsync(new FakeKvNode("leader")
        {
            Fail = op => op == "join" && Interlocked.Increment(ref refusals) > 0
                ? new NodeException(NodeErrorKind.BadRequest, "raft address r2:12000 is already used by node 'n1'")
                : null,
        });
        var run = new Run().Start("-id", "n2", "--raft-adv-addr", "r2:12000", "-join", leader.Address, _dataDir);

        await RunningServer.WaitUntilAsync(() => run.Logs.Messages.Any(m => m.Contains("Not retrying")), "the refusal to be logged");
        Assert.Contains(run.Logs.Messages, m => m.Contains("already used by node 'n1'"));
        await Task.Delay(TimeSpan.FromSeconds(1)); // the joiner's first pause is 200 ms: a retry would have come by now
        Assert.Equal(1, Volatile.Read(ref refusals));
        Assert.Equal(0, await run.StopAsync());
    }

    [Fact]
    public async Task Join_naming_only_itself_bootstraps()
    {
        // The fork starts every node with the same --rjoin; the node it names founds the cluster. Spelled with
        // "localhost" against a 127.0.0.1 bind, to show the loopback names count as one host.
        var run = new Run();
        run.Start("--rjoin", run.HttpAddress.Replace("127.0.0.1", "localhost"), _dataDir);
        await run.WaitServingAsync();
        Assert.True(run.Options!.Bootstrap);
        Assert.Contains("bootstrapping", run.Stdout.ToString());
        Assert.Equal(0, await run.StopAsync());
    }

    [Fact]
    public async Task Node_with_state_does_not_join_again()
    {
        Directory.CreateDirectory(Path.Combine(_dataDir, NodeStorage.SnapshotFolder));
        await File.WriteAllTextAsync(Path.Combine(_dataDir, NodeStorage.SnapshotFolder, "snapshot"), "state");
        await using var leader = await RunningServer.StartAsync(new FakeKvNode("leader"));
        var run = new Run();
        run.Node.LastLogIndex = 42;
        run.Node.Role = Role.Follower;
        run.Start("-join", leader.Address, _dataDir);

        await RunningServer.WaitUntilAsync(() => run.Node.StatusCalls > 0, "the daemon to look at the node's state");
        await RunningServer.WaitUntilAsync(() => run.Logs.Messages.Any(m => m.Contains("not joining again")), "the decision to be logged");
        Assert.False(run.Options!.Bootstrap);
        Assert.Contains("restarting from existing state", run.Stdout.ToString());
        Assert.Equal(0, await run.StopAsync());
        Assert.Empty(leader.Node.Joins);
    }

    [Fact]
    public async Task Node_start_failure_exits_1()
    {
        var stderr = new StringWriter();
        var code = await Daemon.RunAsync([.. CommandLineTests.OnFreePorts("-inmem", _dataDir)], (_, _, _) => throw new NotImplementedException("not yet"),
            TextWriter.Null, stderr, default, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        Assert.Equal(1, code);
        Assert.Contains("cannot start the node: not yet", stderr.ToString());
    }

    [Theory]
    [InlineData("-haddr", "HTTP", false)]
    [InlineData("-raddr", "raft", false)]
    [InlineData("-raddr", "raft", true)]   // held by another node's raft transport
    [InlineData("-haddr", "HTTP", true)]
    public async Task A_port_in_use_exits_1_before_the_data_directory_is_touched(string flag, string what, bool heldByATransport)
    {
        using var listener = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        await using var transport = heldByATransport ? new RaftKv.Node.Transport.TcpTransport("other", "127.0.0.1:0", Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance) : null;
        if (!heldByATransport) listener.Start();
        var port = transport?.LocalEndPoint.Port ?? ((IPEndPoint)listener.LocalEndpoint).Port;
        var address = "127.0.0.1:" + port;
        string[] args = flag == "-haddr"
            ? ["-haddr", address, "-raddr", "127.0.0.1:" + FreePorts.Pick(), _dataDir]
            : ["-haddr", "127.0.0.1:" + FreePorts.Pick(), "-raddr", address, _dataDir];
        var started = false;
        var stderr = new StringWriter();
        var code = await Daemon.RunAsync(args, (_, _, _) => { started = true; return Task.FromResult<IKvNode>(new FakeKvNode()); },
            TextWriter.Null, stderr, default, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        Assert.Equal(1, code);
        Assert.False(started);
        Assert.False(Directory.Exists(_dataDir), "the data directory was created");
        Assert.StartsWith($"raftkvd: cannot listen for {what} on {address}: port {port} is already in use", stderr.ToString());
        Assert.Single(stderr.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries));
    }
}
