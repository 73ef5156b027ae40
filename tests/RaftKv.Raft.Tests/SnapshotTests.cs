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

    private static TestCluster ReportingCluster() =>
        new(3, options: id => new RaftOptions { Id = id, Random = TestCluster.SeedFor(id), SnapshotOutcomesReported = true });

    /// <summary>n3 missed entries the leader n1 then compacted away: it needs a snapshot.</summary>
    private static TestCluster FollowerNeedingASnapshot(TestCluster c)
    {
        c.Elect("n1");
        c.Isolate("n3");
        for (var i = 0; i < 5; i++) c.Propose("n1", "e" + i);
        c.Settle();
        SnapshotAndCompact(c, "n1", trailing: 0);
        c.Heal();
        return c;
    }

    [Fact]
    public void ReportedSnapshot_IsNotSentAgainWhileItsTransferRuns()
    {
        // A large snapshot streams for many election timeouts; the runtime reports its outcome, so the leader waits
        // for it instead of asking for a new transfer every election timeout (which restarted the stream each time).
        var c = FollowerNeedingASnapshot(ReportingCluster());
        var streaming = new List<Message>();
        c.Drop = m =>
        {
            if (m.Type != MessageType.InstallSnapshot) return false;
            streaming.Add(m); // still on its way
            return true;
        };
        c.Tick(20 * 10);
        Assert.Single(c.Sent, m => m.Type == MessageType.InstallSnapshot);
        Assert.Equal(ReplicationState.Snapshot, c["n1"].ReplicationStatus["n3"].State);

        // The transfer ends: the follower installs it, and the leader hears of both.
        c.Drop = null;
        c.Deliver(Assert.Single(streaming));
        c["n1"].ReportSnapshot("n3", succeeded: true);
        c.Propose("n1", "after");
        c.Tick(3);
        Assert.Single(c.Nodes["n3"].InstalledSnapshots);
        Assert.Equal(["after"], c.AppliedData("n3"));
    }

    [Fact]
    public void ReportedSnapshotFailure_SendsItAgain()
    {
        var c = FollowerNeedingASnapshot(ReportingCluster());
        c.Drop = m => m.Type == MessageType.InstallSnapshot;
        c.Tick(3);
        Assert.Single(c.Sent, m => m.Type == MessageType.InstallSnapshot);
        c.Drop = null;
        c["n1"].ReportSnapshot("n3", succeeded: false);
        c.Tick(3);
        Assert.Equal(2, c.Sent.Count(m => m.Type == MessageType.InstallSnapshot));
        Assert.Single(c.Nodes["n3"].InstalledSnapshots);
    }

    [Fact]
    public void ReportedSnapshotSuccess_WithItsAnswerLost_IsFollowedByAProbe()
    {
        // The follower stored and installed the snapshot but its answer was lost: without the report the leader would
        // wait for it for ever (it no longer retries on its own).
        var c = FollowerNeedingASnapshot(ReportingCluster());
        c.Drop = m => m.From == "n3" && m.Type == MessageType.AppendResponse && !m.Reject;
        c.Tick(3);
        Assert.Single(c.Nodes["n3"].InstalledSnapshots);
        c.Drop = null;
        c.Tick(3 * 10);
        Assert.Equal(ReplicationState.Snapshot, c["n1"].ReplicationStatus["n3"].State);
        c["n1"].ReportSnapshot("n3", succeeded: true);
        c.Propose("n1", "after");
        c.Tick(3);
        Assert.Equal(["after"], c.AppliedData("n3"));
        Assert.Single(c.Sent, m => m.Type == MessageType.InstallSnapshot);
    }
}
