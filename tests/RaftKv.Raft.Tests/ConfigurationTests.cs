namespace RaftKv.Raft.Tests;

public sealed class ConfigurationTests
{
    private static readonly ClusterConfig Three = new([new Member("a", "ra|ha", true), new Member("b", "rb|hb", true), new Member("c", "rc", false)]);

    [Fact]
    public void EncodeDecode_RoundTrips()
    {
        var back = ClusterConfig.Decode(Three.Encode());
        Assert.Equal(Three, back);
        Assert.Equal(new[] { "a", "b" }, back.Voters.ToArray());
        Assert.Equal(2, back.Quorum);
        Assert.Equal("rc", back.Find("c")!.Address);
        Assert.Equal(ClusterConfig.Empty, ClusterConfig.Decode(ClusterConfig.Empty.Encode()));
    }

    [Fact]
    public void Decode_RejectsEveryTruncationAndGarbage()
    {
        var bytes = Three.Encode();
        for (var n = 0; n < bytes.Length; n++)
        {
            Assert.Throws<FormatException>(() => ClusterConfig.Decode(bytes.AsSpan(0, n)));
        }
        Assert.Throws<FormatException>(() => ClusterConfig.Decode([.. bytes, 0]));
        var bad = (byte[])bytes.Clone();
        bad[4] = 7; // suffrage byte
        Assert.Throws<FormatException>(() => ClusterConfig.Decode(bad));
    }

    [Fact]
    public void Apply_AddUpdateRemove()
    {
        var added = Three.Apply(new ConfigChange(ConfigChangeType.AddVoter, "d", "rd"), out var e)!;
        Assert.Null(e);
        Assert.Equal(3, added.Voters.Length);
        var moved = added.Apply(new ConfigChange(ConfigChangeType.AddVoter, "d", "rd2"), out _)!;
        Assert.Equal("rd2", moved.Find("d")!.Address);
        var promoted = Three.Apply(new ConfigChange(ConfigChangeType.AddVoter, "c"), out _)!;
        Assert.True(promoted.IsVoter("c"));
        Assert.Equal("rc", promoted.Find("c")!.Address);
        Assert.Null(Three.Apply(new ConfigChange(ConfigChangeType.AddNonVoter, "a"), out e));
        Assert.Contains("voter", e);
        var removed = Three.Apply(new ConfigChange(ConfigChangeType.Remove, "b"), out _)!;
        Assert.Null(removed.Find("b"));
        Assert.Same(Three, Three.Apply(new ConfigChange(ConfigChangeType.AddVoter, "a", "ra|ha"), out _));
    }

    [Fact]
    public void DuplicateIds_AreRejected()
    {
        Assert.Throws<ArgumentException>(() => new ClusterConfig([new Member("a", "", true), new Member("a", "", false)]));
    }
}
