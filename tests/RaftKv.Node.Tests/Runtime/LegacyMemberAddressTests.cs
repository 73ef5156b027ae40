using System.Buffers.Binary;
using System.Text;
using RaftKv.Raft;
using RaftKv.Storage;

namespace RaftKv.Node.Tests.Runtime;

/// <summary>A WAL written by the version that kept a member's addresses as one "raft|http" string still loads.</summary>
public sealed class LegacyMemberAddressTests
{
    [Fact]
    public async Task A_node_whose_log_holds_raft_and_http_in_one_string_reads_them_as_two()
    {
        await using var c = new NodeCluster();
        var options = c.OptionsFor("n1", bootstrap: false);
        using (var storage = NodeStorage.Open(options.DataDirectory))
        {
            // The configuration entry exactly as the previous version encoded it (format -2).
            var legacy = LegacyConfig("cluster-1", "n1", options.RaftAddress + "|" + options.HttpAdvertiseAddress, storage.Incarnation);
            storage.Log.Append([new Entry(1, 1, EntryType.Configuration, legacy)]);
            storage.Log.SetHardState(new HardState(1, null, 1));
            storage.Log.Sync();
        }

        var node = await c.StartAsync("n1");
        var deadline = DateTime.UtcNow.AddSeconds(15);
        NodeStatus status;
        while ((status = await node.GetStatusAsync()).LeaderId is null)
        {
            Assert.True(DateTime.UtcNow < deadline, "no leader within 15 s");
            await Task.Delay(20);
        }
        var self = status.Servers.Single();
        Assert.Equal(NodeCluster.RaftAddressOf("n1"), self.RaftAddress);
        Assert.Equal(NodeCluster.HttpAddressOf("n1"), self.HttpAddress);
        Assert.Equal(NodeCluster.HttpAddressOf("n1"), status.LeaderHttpAddress);
        Assert.Equal("cluster-1", status.ClusterId);
        await node.SetAsync([new("k", "v")]);
    }

    /// <summary><c>i32 -2 | string clusterId | i32 1 | u8 voter | string id | string address | u64 incarnation</c>.</summary>
    private static byte[] LegacyConfig(string clusterId, string id, string address, ulong incarnation)
    {
        var bytes = new List<byte>();
        void Int(int v)
        {
            var b = new byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(b, v);
            bytes.AddRange(b);
        }
        void Str(string s)
        {
            Int(Encoding.UTF8.GetByteCount(s));
            bytes.AddRange(Encoding.UTF8.GetBytes(s));
        }
        Int(-2);
        Str(clusterId);
        Int(1);
        bytes.Add(1);
        Str(id);
        Str(address);
        var inc = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(inc, incarnation);
        bytes.AddRange(inc);
        return bytes.ToArray();
    }
}
