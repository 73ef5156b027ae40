using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace RaftKv.Faults.Tests.Relay;

/// <summary>The relay against a stand-in node: forwards unchanged, names the caller from the hello, obeys rules.</summary>
public sealed class RelayTests : IDisposable
{
    private readonly TcpListener _node = new(IPAddress.Loopback, 0);
    private readonly RelayNetwork _network = new();
    private readonly int _relayPort;

    public RelayTests()
    {
        _node.Start();
        _relayPort = _network.AddRelay("b", ((IPEndPoint)_node.LocalEndpoint).Port);
    }

    /// <summary>A hello as the transport sends it, with extra fields after the address (the handshake may grow there).</summary>
    private static byte[] Hello(string id, ushort version = 7)
    {
        var idBytes = Encoding.UTF8.GetBytes(id);
        var address = "127.0.0.1:1"u8.ToArray();
        var extra = "cluster-id+incarnation"u8.ToArray();
        var hello = new byte[12 + idBytes.Length + address.Length + extra.Length];
        "RKVT"u8.CopyTo(hello);
        BinaryPrimitives.WriteUInt16LittleEndian(hello.AsSpan(4), version);
        hello[6] = 1;
        BinaryPrimitives.WriteUInt16LittleEndian(hello.AsSpan(8), (ushort)idBytes.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(hello.AsSpan(10), (ushort)address.Length);
        idBytes.CopyTo(hello, 12);
        address.CopyTo(hello, 12 + idBytes.Length);
        extra.CopyTo(hello, 12 + idBytes.Length + address.Length);
        return hello;
    }

    private async Task<(NetworkStream Caller, NetworkStream Node, TcpClient A, TcpClient B)> ConnectAsync(string from)
    {
        var a = new TcpClient();
        await a.ConnectAsync(IPAddress.Loopback, _relayPort);
        var callerStream = a.GetStream();
        await callerStream.WriteAsync(Hello(from));
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        var b = await _node.AcceptTcpClientAsync(cts.Token);
        return (callerStream, b.GetStream(), a, b);
    }

    private static async Task<byte[]> ReadExactly(Stream s, int count)
    {
        var buffer = new byte[count];
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await s.ReadExactlyAsync(buffer, cts.Token);
        return buffer;
    }

    /// <summary>True when the stream ends (or resets) within the deadline: the relay closed it.</summary>
    private static async Task<bool> ClosesAsync(Stream s)
    {
        using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        try
        {
            return await s.ReadAsync(new byte[1], cts.Token) == 0;
        }
        catch (IOException)
        {
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    [Fact]
    public async Task Pass_ForwardsEveryByteUnchanged_BothWays()
    {
        var (caller, node, a, b) = await ConnectAsync("a");
        using (a)
        using (b)
        {
            var hello = Hello("a");
            Assert.Equal(hello, await ReadExactly(node, hello.Length));
            await caller.WriteAsync("frames"u8.ToArray());
            Assert.Equal("frames"u8.ToArray(), await ReadExactly(node, 6));
            await node.WriteAsync("reply"u8.ToArray());
            Assert.Equal("reply"u8.ToArray(), await ReadExactly(caller, 5));
        }
    }

    [Fact]
    public async Task Drop_DeliversNothing_AndHealingClosesTheDamagedConnection()
    {
        var (caller, node, a, b) = await ConnectAsync("a");
        using (a)
        using (b)
        {
            await ReadExactly(node, Hello("a").Length);
            _network.Set("a", "b", LinkRule.Drop);
            await caller.WriteAsync("lost"u8.ToArray());
            await RaftkvdCluster.Eventually(() => Task.FromResult(_network.BytesDropped >= 4), "the relay to drop the bytes");
            // Another direction is another rule: b's own connections to a would still pass.
            Assert.Equal(LinkRule.Pass, _network.Rule("b", "a"));
            _network.Set("a", "b", LinkRule.Pass);
            Assert.True(await ClosesAsync(node));
        }
    }

    [Fact]
    public async Task Cut_ClosesLiveConnections_AndRefusesNewOnes_OnlyForThatCaller()
    {
        var (caller, node, a, b) = await ConnectAsync("a");
        using (a)
        using (b)
        {
            await ReadExactly(node, Hello("a").Length);
            _network.Set("a", "b", LinkRule.Cut);
            Assert.True(await ClosesAsync(caller));
        }
        using var again = new TcpClient();
        await again.ConnectAsync(IPAddress.Loopback, _relayPort);
        await again.GetStream().WriteAsync(Hello("a"));
        Assert.True(await ClosesAsync(again.GetStream()));

        // c is not cut off from b.
        var (_, nodeSide, c, d) = await ConnectAsync("c");
        using (c)
        using (d)
        {
            var hello = Hello("c");
            Assert.Equal(hello, await ReadExactly(nodeSide, hello.Length));
        }
    }

    public void Dispose()
    {
        _network.Dispose();
        _node.Stop();
        _node.Dispose();
    }
}
