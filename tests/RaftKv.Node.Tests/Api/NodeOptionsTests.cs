namespace RaftKv.Node.Tests.Api;

/// <summary>NodeOptions.Validate: the rules raftkvd's flags obey hold for an embedded node too, checked before anything opens.</summary>
public sealed class NodeOptionsTests
{
    private static NodeOptions Valid() => new()
    {
        Id = "n1",
        DataDirectory = "unused",
        RaftBindAddress = "127.0.0.1:12000",
        InMemory = true,
    };

    [Fact]
    public void Defaults_with_an_id_and_an_address_are_valid()
    {
        Assert.Null(Valid().FindProblem());
        Valid().Validate();
        Assert.Null((Valid() with { HttpAdvertiseAddress = "h1:11000", RaftAdvertiseAddress = "[fd00::1]:12000", RaftBindAddress = "0.0.0.0:12000" }).FindProblem());
    }

    public static TheoryData<string, Func<NodeOptions, NodeOptions>, string> Broken => new()
    {
        { "Id", o => o with { Id = "" }, "Id: a node id must not be empty" },
        { "Id", o => o with { Id = "n\n1" }, "control characters" },
        { "Id", o => o with { Id = new string('i', NodeIds.MaxBytes + 1) }, "at most 1024 bytes" },
        { "DataDirectory", o => o with { InMemory = false, DataDirectory = " " }, "DataDirectory must name a directory" },
        { "RaftBindAddress", o => o with { RaftBindAddress = "nohost" }, "RaftBindAddress: \"nohost\" is not a host:port address" },
        { "RaftBindAddress", o => o with { RaftBindAddress = "127.0.0.1:0" }, "needs a fixed port" },
        { "RaftBindAddress", o => o with { RaftBindAddress = "0.0.0.0:12000" }, "listens on every interface, which other nodes cannot dial: give RaftAdvertiseAddress" },
        { "RaftAdvertiseAddress", o => o with { RaftAdvertiseAddress = "[::]:12000" }, "needs a host other nodes can reach" },
        { "RaftAdvertiseAddress", o => o with { RaftAdvertiseAddress = "h:0" }, "needs a fixed port" },
        { "HttpAdvertiseAddress", o => o with { HttpAdvertiseAddress = "http://h:80" }, "is not a host:port address" },
        { "HttpAdvertiseAddress", o => o with { HttpAdvertiseAddress = ":11000" }, "needs a host other nodes can reach" },
        { "HeartbeatTimeout", o => o with { HeartbeatTimeout = TimeSpan.Zero }, "HeartbeatTimeout must be positive" },
        { "ElectionTimeout", o => o with { ElectionTimeout = TimeSpan.FromMilliseconds(100) }, "ElectionTimeout must be longer than HeartbeatTimeout" },
        { "ElectionTimeout", o => o with { ElectionTimeout = TimeSpan.FromDays(2) }, "ElectionTimeout must be at most 24 hours" },
        { "RequestTimeout", o => o with { RequestTimeout = Timeout.InfiniteTimeSpan }, "RequestTimeout must be positive" },
        { "SnapshotInterval", o => o with { SnapshotInterval = TimeSpan.Zero }, "SnapshotInterval must be positive" },
        { "SnapshotThreshold", o => o with { SnapshotThreshold = 0 }, "SnapshotThreshold must be positive" },
        { "TrailingLogs", o => o with { TrailingLogs = -1 }, "TrailingLogs must not be negative" },
        { "SnapshotsRetained", o => o with { SnapshotsRetained = 0 }, "at least 1" },
        { "MaxQueuedRequests", o => o with { MaxQueuedRequests = 0 }, "MaxQueuedRequests must be at least 1" },
        { "MaxQueuedBytes", o => o with { MaxQueuedBytes = 0 }, "MaxQueuedBytes must be at least 1" },
    };

    [Theory]
    [MemberData(nameof(Broken))]
    public void A_broken_rule_is_named_with_its_option(string option, Func<NodeOptions, NodeOptions> breakIt, string message)
    {
        var options = breakIt(Valid());
        var problem = options.FindProblem();
        Assert.NotNull(problem);
        Assert.Equal(option, problem.Option);
        Assert.Contains(message, problem.Message);
        var e = Assert.ThrowsAny<ArgumentException>(options.Validate);
        Assert.Equal(option, e.ParamName);
        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void Messages_name_options_as_the_caller_asks()
    {
        var problem = (Valid() with { ElectionTimeout = TimeSpan.FromMilliseconds(50) }).FindProblem(n => "--" + n.ToLowerInvariant());
        Assert.Equal("--electiontimeout must be longer than --heartbeattimeout", problem!.Message);
    }

    [Fact]
    public void The_transport_options_are_validated_too() =>
        Assert.Throws<ArgumentOutOfRangeException>((Valid() with { Transport = new RaftKv.Node.Transport.TransportOptions { SendQueueCapacity = 0 } }).Validate);

    [Fact]
    public async Task An_embedded_node_with_an_id_a_join_would_refuse_does_not_start()
    {
        // Before Validate, such a node started, founded a cluster under that id, and only a join (or the transport's
        // handshake at every connection) refused it later.
        var directory = Path.Combine(Path.GetTempPath(), "raftkv-validate-" + Guid.NewGuid().ToString("N"));
        var options = Valid() with { Id = "bad\tid", InMemory = false, DataDirectory = directory, Bootstrap = true };
        var e = await Assert.ThrowsAsync<ArgumentException>(() => KvNode.StartAsync(options));
        Assert.Equal("Id", e.ParamName);
        Assert.Contains("must not contain control characters", e.Message);
        Assert.False(Directory.Exists(directory)); // refused before anything was opened
    }
}
