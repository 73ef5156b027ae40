using RaftKv.Node.Transport;
using RaftKv.Raft;
using RaftKv.TestSupport;
using static RaftKv.Node.Tests.Transport.TransportTestKit;

namespace RaftKv.Node.Tests.Transport;

/// <summary>The handshake's identity rules: two clusters never exchange messages; a receiver learns the sender's incarnation.</summary>
public sealed class IdentityHandshakeTests
{
    private static async Task<(TestNode Node, LogCapture Log)> Start(string id)
    {
        var log = new LogCapture();
        return (await TestNode.Start(id, log.CreateLogger(id)), log);
    }

    [Fact]
    public async Task Nodes_of_two_clusters_refuse_each_other_and_both_say_so()
    {
        var (a, aLog) = await Start("a");
        var (b, bLog) = await Start("b");
        await using var _ = a;
        await using var __ = b;
        a.Transport.SetIdentity("cluster-one", 1);
        b.Transport.SetIdentity("cluster-two", 2);
        a.Transport.SetPeers(new Dictionary<string, string> { ["b"] = b.Address });
        b.Transport.SetPeers(new Dictionary<string, string> { ["a"] = a.Address });

        // Sends are queued, and refused at the handshake: nothing arrives, on either side, however long they retry.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (a.Transport.RefusedAsOtherCluster("b") is null || b.Transport.RefusedAsOtherCluster("a") is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "the refusals were not seen within 10 s");
            a.Transport.Send(new Message { Type = MessageType.Heartbeat, From = "a", To = "b", Term = 1 });
            b.Transport.Send(new Message { Type = MessageType.Heartbeat, From = "b", To = "a", Term = 1 });
            await Task.Delay(20);
        }
        Assert.Equal("cluster-two", a.Transport.RefusedAsOtherCluster("b"));
        // A join asks only about refusals met since it began (an older one may be a wiped node's previous life).
        Assert.Null(a.Transport.RefusedAsOtherCluster("b", Environment.TickCount64 + 60_000));
        Assert.Equal("cluster-one", b.Transport.RefusedAsOtherCluster("a"));
        Assert.Null(await a.TryReceive(300));
        Assert.Null(await b.TryReceive(300));

        // Each side logged the refusal it made and the one it met, saying what to do; once, not at every retry.
        Assert.Single(bLog.Messages, m => m.Contains("refused a at") && m.Contains("cluster-one") && m.Contains("empty its data directory"));
        Assert.Single(aLog.Messages, m => m.Contains("belongs to another cluster (cluster-two)") && m.Contains("empty its data directory"));
    }

    [Fact]
    public async Task A_node_in_no_cluster_yet_talks_to_any_and_incarnations_are_stamped()
    {
        var (a, _) = await Start("a");
        var (b, _) = await Start("b");
        await using var _a = a;
        await using var _b = b;
        a.Transport.SetIdentity("cluster-one", 0x1234);
        b.Transport.SetIdentity("", 0x5678); // a new node, waiting to be added
        a.Transport.SetPeers(new Dictionary<string, string> { ["b"] = b.Address });
        b.Transport.SetPeers(new Dictionary<string, string> { ["a"] = a.Address });

        Assert.True(a.Transport.Send(new Message { Type = MessageType.Append, From = "a", To = "b", Term = 1 }));
        Assert.Equal(0x1234UL, (await b.Receive()).FromIncarnation);
        Assert.True(b.Transport.Send(new Message { Type = MessageType.AppendResponse, From = "b", To = "a", Term = 1 }));
        Assert.Equal(0x5678UL, (await a.Receive()).FromIncarnation);
        Assert.Null(a.Transport.RefusedAsOtherCluster("b"));
    }

    [Fact]
    public void Hello_keeps_the_version_1_prefix_so_tools_reading_the_caller_id_still_work()
    {
        var hello = Handshake.EncodeHello(ConnectionKind.Messages, "node-1", "127.0.0.1:5", "cid", 42);
        Assert.Equal("RKVT"u8.ToArray(), hello[..4]);
        Assert.Equal(6, BitConverter.ToUInt16(hello, 8));
        Assert.Equal("node-1"u8.ToArray(), hello[Handshake.HelloFixedLength..(Handshake.HelloFixedLength + 6)]);
        Assert.Equal(42UL, BitConverter.ToUInt64(hello, hello.Length - 8));
    }
}
