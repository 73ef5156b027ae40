namespace RaftKv.Node.Tests.Api;

/// <summary>The one host:port reading shared by flags, joins, the transport and forwarding.</summary>
public sealed class NetworkAddressTests
{
    [Theory]
    [InlineData("127.0.0.1:7000", "127.0.0.1", 7000)]
    [InlineData("node-1.example:7000", "node-1.example", 7000)]
    [InlineData("raftkv_node1:11000", "raftkv_node1", 11000)]
    [InlineData("[::1]:0", "::1", 0)]
    [InlineData(":7000", "", 7000)]
    [InlineData("*:7000", "*", 7000)]
    [InlineData("localhost:65535", "localhost", 65535)]
    [InlineData("host:07000", "host", 7000)]
    [InlineData("NODE.Example.:1", "NODE.Example.", 1)]
    public void Host_port_addresses_parse(string address, string host, int port)
    {
        Assert.True(NetworkAddress.TryParse(address, out var h, out var p));
        Assert.Equal((host, port), (h, p));
    }

    [Theory]
    [InlineData("")]
    [InlineData("host")]
    [InlineData("host:")]
    [InlineData("host:70000")]
    [InlineData("host:-1")]
    [InlineData("host:+7000")]      // int.Parse would take the sign
    [InlineData("host: 7000")]      // ... and the space
    [InlineData("host:7000 ")]
    [InlineData("::1:7000")]        // IPv6 must be bracketed
    [InlineData("[::1:7000")]
    [InlineData("[nothex]:7000")]
    [InlineData("[127.0.0.1]:7000")]
    [InlineData("a b:80")]
    [InlineData("x/y?z:80")]
    [InlineData("http://h:80")]
    [InlineData("h|x:80")]          // '|' separated the two addresses in older configurations
    [InlineData("h\r\nInjected: 1:80")]
    public void Malformed_addresses_are_refused(string address)
    {
        Assert.False(NetworkAddress.TryParse(address, out _, out _));
        Assert.False(NetworkAddress.IsDialable(address));
    }

    [Theory]
    [InlineData("127.0.0.1:7000", "127.0.0.1", 7000)]
    [InlineData("[::1]:7000", "::1", 7000)]
    [InlineData("[fd00::5]:11000", "fd00::5", 11000)]
    [InlineData(":7000", "", 7000)]
    [InlineData("host:07000", "host", 7000)]
    public void A_parsed_address_is_a_value_that_prints_back_to_host_port(string text, string host, int port)
    {
        var address = NetworkAddress.Parse(text);
        Assert.Equal((host, port), (address.Host, address.Port));
        Assert.Equal(address, NetworkAddress.Parse(address.ToString()));
        Assert.True(NetworkAddress.TryParse(text, out NetworkAddress again));
        Assert.Equal(address, again);
        Assert.Null(NetworkAddress.Problem(text));
    }

    [Theory]
    [InlineData(null, "\"\" is not a host:port address")]
    [InlineData("", "\"\" is not a host:port address")]
    [InlineData("host", "\"host\" is not a host:port address")]
    [InlineData("host:99999", "\"host:99999\" is not a host:port address")]
    [InlineData("::1:80", "\"::1:80\" is not a host:port address")]
    public void A_bad_address_is_refused_saying_what_it_is(string? text, string problem)
    {
        Assert.Equal(problem, NetworkAddress.Problem(text));
        Assert.False(NetworkAddress.TryParse(text, out NetworkAddress address));
        Assert.Equal(default, address);
        if (text is not null) Assert.Equal(problem, Assert.Throws<FormatException>(() => NetworkAddress.Parse(text)).Message);
    }

    [Fact]
    public void A_host_too_long_is_refused_saying_so() =>
        Assert.Contains("has a host longer than 253 characters", NetworkAddress.Problem(new string('a', 254) + ":1"));

    [Theory]
    [InlineData("h:80", null)]
    [InlineData("h:0", "needs a fixed port")]
    [InlineData(":80", "needs a host other nodes can reach")]
    [InlineData("0.0.0.0:80", "needs a host other nodes can reach")]
    [InlineData("h", "is not a host:port address")]
    public void Only_reachable_addresses_have_no_reachability_problem(string text, string? problem)
    {
        var found = NetworkAddress.ReachableProblem(text);
        if (problem is null) Assert.Null(found);
        else Assert.Contains(problem, found);
        Assert.Equal(problem is null, NetworkAddress.IsDialable(text));
    }

    [Fact]
    public void Another_port_on_the_same_host_prints_as_peers_write_it()
    {
        Assert.Equal("[::1]:9001", NetworkAddress.Parse("[::1]:8001").WithPort(9001).ToString());
        Assert.Equal("node1.example:12000", NetworkAddress.Parse("node1.example:11000").WithPort(12000).ToString());
        Assert.Throws<ArgumentOutOfRangeException>(() => NetworkAddress.Parse("h:1").WithPort(65536));
    }

    [Fact]
    public void Typed_addresses_compare_endpoints_with_loopback_spellings_as_one()
    {
        Assert.True(NetworkAddress.Parse("localhost:5000").IsSameEndpoint(NetworkAddress.Parse("[::1]:5000")));
        Assert.True(NetworkAddress.Parse("A.example:1").IsSameEndpoint(NetworkAddress.Parse("a.example:1")));
        Assert.False(NetworkAddress.Parse("a:1").IsSameEndpoint(NetworkAddress.Parse("a:2")));
        Assert.True(NetworkAddress.Parse("*:1").IsAnyInterface);
        Assert.True(NetworkAddress.Parse("app.localhost:1").IsLoopback);
        Assert.False(NetworkAddress.Parse("10.0.0.1:1").IsLoopback);
    }

    [Fact]
    public void Loopback_spellings_are_one_endpoint()
    {
        Assert.True(NetworkAddress.SameEndpoint("localhost:5000", "127.0.0.1:5000"));
        Assert.True(NetworkAddress.SameEndpoint("[::1]:5000", "LOCALHOST:5000"));
        Assert.False(NetworkAddress.SameEndpoint("localhost:5000", "localhost:5001"));
        Assert.False(NetworkAddress.SameEndpoint("a:5000", "b:5000"));
    }

    [Fact]
    public void A_host_longer_than_a_dns_name_is_refused()
    {
        Assert.True(NetworkAddress.TryParse(new string('a', NetworkAddress.MaxHostLength) + ":1", out _, out _));
        Assert.False(NetworkAddress.TryParse(new string('a', NetworkAddress.MaxHostLength + 1) + ":1", out _, out _));
    }

    [Theory]
    [InlineData("127.0.0.1:7000", true)]
    [InlineData("[::1]:7000", true)]
    [InlineData(":7000", false)]     // fine to bind, but nobody can dial "no host"
    [InlineData("*:7000", false)]
    [InlineData("+:7000", false)]
    [InlineData("0.0.0.0:7000", false)]
    [InlineData("[::]:7000", false)]
    [InlineData("127.0.0.1:0", false)]
    public void Only_a_named_host_and_a_fixed_port_are_dialable(string address, bool dialable) =>
        Assert.Equal(dialable, NetworkAddress.IsDialable(address));

    [Theory]
    [InlineData("n1", null)]
    [InlineData("127.0.0.1:12000", null)]
    [InlineData("", "empty")]
    [InlineData("  ", "empty")]
    [InlineData("a\nb", "control")]
    [InlineData("tab\there", "control")]
    public void Node_ids_are_checked(string id, string? problem)
    {
        var found = NodeIds.Problem(id);
        if (problem is null) Assert.Null(found);
        else Assert.Contains(problem, found);
    }

    [Fact]
    public void A_node_id_longer_than_the_handshake_carries_is_refused()
    {
        Assert.Null(NodeIds.Problem(new string('i', NodeIds.MaxBytes)));
        Assert.Contains("at most 1024 bytes", NodeIds.Problem(new string('é', NodeIds.MaxBytes / 2 + 1)));
    }
}
