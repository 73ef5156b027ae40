namespace RaftKv.Raft.Tests;

public class ConfigHistoryTests
{
    private static ClusterConfig Voters(params string[] ids) => new(ids.Select(id => new Member(id, "", true)));

    [Fact]
    public void Truncation_BringsBackThePreviousConfiguration()
    {
        var h = new ConfigHistory();
        var a = Voters("n1");
        var b = Voters("n1", "n2");
        var c = Voters("n1", "n2", "n3");
        h.Restore(a, 10);
        h.Add(12, b);
        h.Add(15, c);
        Assert.Same(c, h.Newest);
        Assert.Equal(15UL, h.NewestIndex);

        // Entries from 16 on carry no configuration: nothing changes.
        Assert.False(h.TruncateFrom(16));
        Assert.Same(c, h.Newest);

        Assert.True(h.TruncateFrom(13));
        Assert.Same(b, h.Newest);
        Assert.Equal(12UL, h.NewestIndex);

        Assert.True(h.TruncateFrom(11));
        Assert.Same(a, h.Newest);
        Assert.Equal(10UL, h.NewestIndex);
    }

    [Fact]
    public void At_GivesTheConfigurationInForceAtAnIndex()
    {
        var h = new ConfigHistory();
        var a = Voters("n1");
        var b = Voters("n1", "n2");
        h.Restore(a, 10);
        h.Add(12, b);
        Assert.Same(a, h.At(10));
        Assert.Same(a, h.At(11));
        Assert.Same(b, h.At(12));
        Assert.Same(b, h.At(100));
    }

    [Fact]
    public void Compact_FoldsCoveredEntriesIntoTheBase()
    {
        var h = new ConfigHistory();
        var a = Voters("n1");
        var b = Voters("n1", "n2");
        var c = Voters("n1", "n2", "n3");
        h.Restore(a, 10);
        h.Add(12, b);
        h.Add(15, c);
        h.Compact(13);
        Assert.Equal(13UL, h.BaseIndex);
        Assert.Same(b, h.At(13));
        Assert.Same(c, h.Newest);
        // A truncation after the compaction point falls back to the base, not to a configuration compacted away.
        Assert.True(h.TruncateFrom(14));
        Assert.Same(b, h.Newest);
        Assert.Equal(13UL, h.NewestIndex);
        // Compacting to an older point changes nothing.
        h.Compact(11);
        Assert.Equal(13UL, h.BaseIndex);
    }

    [Fact]
    public void Load_ReadsTheSnapshotAndEveryConfigurationEntry()
    {
        var storage = new MemoryStorage();
        var first = Voters("n1");
        RaftCore.Bootstrap(storage, first);
        var second = Voters("n1", "n2");
        storage.Append([new Entry(2, 1, EntryType.Normal, new byte[] { 1 }), new Entry(3, 1, EntryType.Configuration, second.Encode())]);
        var h = new ConfigHistory();
        h.Load(storage);
        Assert.Equal(second, h.Newest);
        Assert.Equal(3UL, h.NewestIndex);
        Assert.Equal(first, h.At(2));
    }
}
