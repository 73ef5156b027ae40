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
    [InlineData("h|x:80")]          // '|' separates the two addresses in the configuration
    [InlineData("h\r\nInjected: 1:80")]
    public void Malformed_addresses_are_refused(string address)
    {
        Assert.False(NetworkAddress.TryParse(address, out _, out _));
        Assert.False(NetworkAddress.IsDialable(address));
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
