using System.Runtime.InteropServices;
using RaftKv.Raft.Tests.Harness;

namespace RaftKv.Raft.Tests;

/// <summary>
/// <see cref="RaftOptions.AsyncStorageSync"/>: Advance means written, and the leader counts its own log toward a
/// quorum only as far as the runtime reports it durable (thesis §10.2.1 with the sync off the core's thread).
/// </summary>
public sealed class AsyncStorageSyncTests
{
    private static (RaftCore Core, MemoryStorage Disk) SingleVoter()
    {
        var disk = new MemoryStorage();
        RaftCore.Bootstrap(disk, new ClusterConfig([new Member("a", "", true)]));
        var core = new RaftCore(new RaftOptions { Id = "a", Random = new Random(1), AsyncStorageSync = true }, disk);
        return (core, disk);
    }

    // Writes a Ready and acknowledges it without reporting it durable; returns the indexes it handed out to apply
    // (the Ready itself is reused by the core after Advance).
    private static List<ulong> WriteOnly(RaftCore core, MemoryStorage disk)
    {
        var rd = core.GetReady();
        if (rd.Entries.Count > 0) disk.Append(CollectionsMarshal.AsSpan((List<Entry>)rd.Entries));
        if (rd.HardState is { } hs) disk.SetHardState(hs);
        var committed = rd.CommittedEntries.Select(e => e.Index).ToList();
        core.Advance();
        return committed;
    }

    [Fact]
    public void Thesis10_2_1_LeaderCommitsItsOwnEntriesOnlyOnceReportedDurable()
    {
        var (core, disk) = SingleVoter();
        core.Campaign();
        WriteOnly(core, disk);
        core.ReportDurable(disk.LastIndex); // the election's Ready (term and vote) is synced before it goes on
        while (core.HasReady) WriteOnly(core, disk);
        var index = core.Propose(TestCluster.Bytes("x")).Index;
        WriteOnly(core, disk);
        Assert.True(core.CommitIndex < index, "a written entry that is not durable must not count for the quorum of one");
        Assert.False(core.HasReady);

        core.ReportDurable(index);
        Assert.Equal(index, core.CommitIndex);
        Assert.Contains(index, WriteOnly(core, disk));
    }

    [Fact]
    public void ReportDurable_NeverCountsBeyondWhatIsInStorage()
    {
        var (core, disk) = SingleVoter();
        core.Campaign();
        WriteOnly(core, disk);
        core.ReportDurable(disk.LastIndex);
        while (core.HasReady) WriteOnly(core, disk);
        var index = core.Propose(TestCluster.Bytes("x")).Index;
        // Reported before the Ready that carries the entry was even taken: nothing beyond storage may count.
        core.ReportDurable(index + 10);
        Assert.True(core.CommitIndex < index);
        WriteOnly(core, disk);
        Assert.True(core.CommitIndex < index, "the early report must not be remembered for entries written later");
        core.ReportDurable(index);
        Assert.Equal(index, core.CommitIndex);
    }

    [Fact]
    public void ReportDurable_WithoutTheOptionIsRefused()
    {
        var disk = new MemoryStorage();
        RaftCore.Bootstrap(disk, new ClusterConfig([new Member("a", "", true)]));
        var core = new RaftCore(new RaftOptions { Id = "a", Random = new Random(1) }, disk);
        Assert.Throws<InvalidOperationException>(() => core.ReportDurable(1));
    }

    [Fact]
    public void FollowersDurableCopiesCommitWithoutTheLeaders()
    {
        // Three voters: the two followers' durable copies are a majority, so the leader's own slow sync does not
        // hold the commit back.
        var c = new TestCluster(3, options: id => new RaftOptions { Id = id, Random = TestCluster.SeedFor(id), AsyncStorageSync = true });
        c.Elect("n1");
        c.Settle();
        var index = c.Propose("n1", "x").Index;
        c.Settle();
        Assert.Equal(index, c["n1"].CommitIndex);
        Assert.Contains(c.Nodes["n1"].Applied, e => e.Index == index);
    }
}
