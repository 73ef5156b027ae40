using System.Buffers.Binary;
using System.Text;

namespace RaftKv.Raft.Tests;

/// <summary>
/// A member's optional addresses in the configuration encoding (format -3, tagged fields), and the older encodings a
/// WAL or snapshot written by a previous version still holds: they must load, with "raft|http" split into the two.
/// </summary>
public sealed class MemberFieldsEncodingTests
{
    private static readonly ClusterConfig WithHttp = new(
        [
            new Member("a", "10.0.0.1:12000", true, 7) { HttpAddress = "10.0.0.1:11000" },
            new Member("b", "[fd00::2]:12000", false, 9) { HttpAddress = "[fd00::2]:11000" },
            new Member("embedded", "10.0.0.3:12000", true, 11),
        ],
        "c0ffee");

    [Fact]
    public void Http_addresses_round_trip_and_a_member_without_one_has_none()
    {
        var back = ClusterConfig.Decode(WithHttp.Encode());
        Assert.Equal(WithHttp, back);
        Assert.Equal("10.0.0.1:12000", back.Find("a")!.Address);
        Assert.Equal("10.0.0.1:11000", back.Find("a")!.HttpAddress);
        Assert.Equal("[fd00::2]:11000", back.Find("b")!.HttpAddress);
        Assert.Equal("", back.Find("embedded")!.HttpAddress);
        Assert.Equal("c0ffee", back.ClusterId);
    }

    [Fact]
    public void The_http_address_counts_in_equality()
    {
        var a = new Member("a", "r:1", true) { HttpAddress = "h:1" };
        Assert.NotEqual(a, a with { HttpAddress = "h:2" });
        Assert.NotEqual(new ClusterConfig([a]), new ClusterConfig([a with { HttpAddress = "" }]));
    }

    [Fact]
    public void The_identity_format_splits_raft_and_http_addresses()
    {
        // Format -2, as the previous version wrote it: i32 -2 | clusterId | count | (voter | id | "raft|http" | incarnation)*.
        var bytes = Legacy(withIdentity: true, ("a", "10.0.0.1:12000|10.0.0.1:11000", true, 7UL), ("e", "10.0.0.3:12000", false, 0UL));
        var config = ClusterConfig.Decode(bytes);
        Assert.Equal("cid", config.ClusterId);
        Assert.Equal(new Member("a", "10.0.0.1:12000", true, 7) { HttpAddress = "10.0.0.1:11000" }, config.Find("a"));
        Assert.Equal(new Member("e", "10.0.0.3:12000", false), config.Find("e"));
        // Written again, it is in the current format and reads back the same.
        Assert.Equal(config, ClusterConfig.Decode(config.Encode()));
        Assert.NotEqual(bytes, config.Encode());
    }

    [Fact]
    public void The_first_format_splits_raft_and_http_addresses()
    {
        var config = ClusterConfig.Decode(Legacy(withIdentity: false, ("a", "localhost:12000|localhost:11000", true, 0UL)));
        Assert.Equal("", config.ClusterId);
        Assert.Equal(new Member("a", "localhost:12000", true) { HttpAddress = "localhost:11000" }, config.Find("a"));
    }

    [Fact]
    public void An_unknown_field_is_skipped_so_a_later_address_needs_no_new_format()
    {
        // A member written by a later version with a field of tag 2 (say a gRPC address) after the HTTP address.
        var bytes = new List<byte>();
        Int(bytes, -3);
        Str(bytes, "cid");
        Int(bytes, 1);
        bytes.Add(1);
        Str(bytes, "a");
        Str(bytes, "r:1");
        Long(bytes, 5);
        bytes.Add(2);
        bytes.Add(1);
        Str(bytes, "h:1");
        bytes.Add(2);
        Str(bytes, "g:1");
        var config = ClusterConfig.Decode(bytes.ToArray());
        Assert.Equal(new Member("a", "r:1", true, 5) { HttpAddress = "h:1" }, config.Find("a"));
    }

    [Fact]
    public void Every_truncation_of_the_current_format_is_refused()
    {
        var bytes = WithHttp.Encode();
        for (var n = 0; n < bytes.Length; n++)
        {
            Assert.Throws<FormatException>(() => ClusterConfig.Decode(bytes.AsSpan(0, n)));
        }
        Assert.Throws<FormatException>(() => ClusterConfig.Decode([.. bytes, 0]));
    }

    [Fact]
    public void A_change_sets_keeps_or_clears_the_http_address()
    {
        var config = new ClusterConfig([new Member("a", "r:1", true) { HttpAddress = "h:1" }, new Member("b", "r:2", true)]);
        // Null keeps the one known (a promotion, an incarnation recorded); empty says there is none; a value replaces it.
        Assert.Same(config, config.Apply(new ConfigChange(ConfigChangeType.AddVoter, "a", "r:1"), out _));
        Assert.Equal("h:1", config.Apply(new ConfigChange(ConfigChangeType.AddVoter, "a", "r:9"), out _)!.Find("a")!.HttpAddress);
        Assert.Equal("", config.Apply(new ConfigChange(ConfigChangeType.AddVoter, "a", "r:1") { HttpAddress = "" }, out _)!.Find("a")!.HttpAddress);
        Assert.Equal("h:9", config.Apply(new ConfigChange(ConfigChangeType.AddVoter, "a") { HttpAddress = "h:9" }, out _)!.Find("a")!.HttpAddress);
        Assert.Equal("r:1", config.Apply(new ConfigChange(ConfigChangeType.AddVoter, "a") { HttpAddress = "h:9" }, out _)!.Find("a")!.Address);
        Assert.Equal("h:3", config.Apply(new ConfigChange(ConfigChangeType.AddNonVoter, "c", "r:3") { HttpAddress = "h:3" }, out _)!.Find("c")!.HttpAddress);
    }

    private static byte[] Legacy(bool withIdentity, params (string Id, string Address, bool Voter, ulong Incarnation)[] members)
    {
        var bytes = new List<byte>();
        if (withIdentity)
        {
            Int(bytes, -2);
            Str(bytes, "cid");
        }
        Int(bytes, members.Length);
        foreach (var m in members)
        {
            bytes.Add(m.Voter ? (byte)1 : (byte)0);
            Str(bytes, m.Id);
            Str(bytes, m.Address);
            if (withIdentity) Long(bytes, m.Incarnation);
        }
        return bytes.ToArray();
    }

    private static void Int(List<byte> bytes, int value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, value);
        bytes.AddRange(b);
    }

    private static void Long(List<byte> bytes, ulong value)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, value);
        bytes.AddRange(b);
    }

    private static void Str(List<byte> bytes, string s)
    {
        var utf8 = Encoding.UTF8.GetBytes(s);
        Int(bytes, utf8.Length);
        bytes.AddRange(utf8);
    }
}
