using RaftKv.Raft.Tests.Harness;

namespace RaftKv.Raft.Tests;

/// <summary>Snapshots and log compaction (Raft §7).</summary>
public sealed class SnapshotTests
{
    private static void SnapshotAndCompact(TestCluster c, string id, ulong trailing)
    {
        var core = c[id];
        var storage = c.Nodes[id].Storage;
        var meta = core.SnapshotMetadataAt(core.AppliedIndex);
        storage.SetSnapshot(meta);
        if (core.AppliedIndex > trailing) storage.Compact(core.AppliedIndex - trailing);
        core.SnapshotTaken(meta);
    }

    [Fact]
    public void Section7_FollowerBehindTheCompactedLogGetsInstallSnapshotThenEntries()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Isolate("n3");
        for (var i = 0; i < 50; i++) c.Propose("n1", "e" + i);
        c.Settle();
        SnapshotAndCompact(c, "n1", trailing: 0);
        var snapIndex = c["n1"].AppliedIndex;
        Assert.Equal(snapIndex + 1, c["n1"].FirstIndex);
        c.Heal();
        c.Sent.Clear();
        c.Tick(3);
        var snapshots = c.Sent.Where(m => m.Type == MessageType.InstallSnapshot && m.To == "n3").ToList();
        Assert.Single(snapshots);
        Assert.Equal(snapIndex, snapshots[0].Snapshot!.Index);
        // n3 installed it: its log restarts after the snapshot, with the snapshot's configuration.
        Assert.Single(c.Nodes["n3"].InstalledSnapshots);
        Assert.Equal(snapIndex + 1, c["n3"].FirstIndex);
        Assert.Equal(3, c["n3"].Config.Voters.Length);
        Assert.Equal(snapIndex, c["n3"].AppliedIndex);
        // And it follows normally afterwards.
        c.Propose("n1", "after");
        c.Settle();
        Assert.Equal(["after"], c.AppliedData("n3"));
    }

    [Fact]
    public void Section7_TrailingEntriesLetASlightlyBehindFollowerCatchUpWithoutSnapshot()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        for (var i = 0; i < 5; i++) c.Propose("n1", "e" + i);
        c.Settle();
        c.Isolate("n3");
        for (var i = 5; i < 10; i++) c.Propose("n1", "e" + i);
        c.Settle();
        // n3 holds up to index 7; the leader keeps 8 entries behind its snapshot at 12.
        SnapshotAndCompact(c, "n1", trailing: 8);
        Assert.True(c["n1"].FirstIndex > 1);
        c.Heal();
        c.Tick(3);
        Assert.DoesNotContain(c.Sent, m => m.Type == MessageType.InstallSnapshot);
        Assert.Equal(10, c.AppliedData("n3").Count());
    }

    [Fact]
    public void SnapshotMetadata_CarriesTermAndConfigurationAtItsIndex()
    {
        var c = new TestCluster(3, nonMembers: 1);
        c.Elect("n1");
        c.Propose("n1", "a");
        c.Settle();
        var at = c["n1"].AppliedIndex;
        c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddNonVoter, "n4", "a4"));
        c.Settle();
        var meta = c["n1"].SnapshotMetadataAt(at);
        Assert.Equal(c["n1"].Term, meta.Term);
        Assert.Null(meta.Config.Find("n4"));
        Assert.NotNull(c["n1"].SnapshotMetadataAt(c["n1"].AppliedIndex).Config.Find("n4"));
        Assert.Throws<ArgumentOutOfRangeException>(() => c["n1"].SnapshotMetadataAt(c["n1"].AppliedIndex + 1));
    }

    [Fact]
    public void LostSnapshot_IsRetriedAfterAnElectionTimeout()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Isolate("n3");
        for (var i = 0; i < 5; i++) c.Propose("n1", "e" + i);
        c.Settle();
        SnapshotAndCompact(c, "n1", trailing: 0);
        c.Heal();
        var dropped = 0;
        c.Drop = m => m.Type == MessageType.InstallSnapshot && dropped++ == 0;
        c.Tick(30);
        Assert.Equal(2, c.Sent.Count(m => m.Type == MessageType.InstallSnapshot));
        Assert.Single(c.Nodes["n3"].InstalledSnapshots);
    }
}
