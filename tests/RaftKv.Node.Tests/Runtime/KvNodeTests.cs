using Microsoft.Extensions.Logging;
using RaftKv.Raft;
using RaftKv.Storage;

namespace RaftKv.Node.Tests.Runtime;

/// <summary>The node runtime end to end, several nodes in one process over an in-process network, data on disk.</summary>
public sealed class KvNodeTests
{
    private static KeyValuePair<string, string>[] Pairs(params (string K, string V)[] p) => p.Select(x => KeyValuePair.Create(x.K, x.V)).ToArray();

    [Fact]
    public async Task SingleNode_BootstrapsLeadsAndServesEveryReadLevel()
    {
        await using var c = new NodeCluster();
        var n = await c.StartAsync("n1", bootstrap: true);
        await c.WaitForLeaderAsync();
        var index = await n.SetAsync(Pairs(("a", "1"), ("b", "2")));
        Assert.True(index > 0);
        foreach (var level in Enum.GetValues<ReadLevel>()) Assert.Equal("1", await n.GetAsync("a", level));
        await n.DeleteAsync("a");
        Assert.Null(await n.GetAsync("a", ReadLevel.Linearizable));
        Assert.Equal("2", await n.GetAsync("b", ReadLevel.Strong));
    }

    [Fact]
    public async Task Restart_ReappliesTheLogBeforeServingEvenLevelNoneReads()
    {
        await using var c = new NodeCluster { Configure = o => o with { SnapshotThreshold = 100 } };
        var n = await c.StartAsync("n1", bootstrap: true);
        await c.WaitForLeaderAsync();
        for (var i = 0; i < 250; i++) await n.SetAsync(Pairs(("k", "v" + i)));
        await c.StopAsync("n1");
        // A snapshot covers part of the log; the rest must be replayed before the node answers anything.
        var back = await c.StartAsync("n1");
        Assert.Equal("v249", await back.GetAsync("k", ReadLevel.None));
        var s = await back.GetStatusAsync();
        Assert.True(s.LastSnapshotIndex > 0 && s.LastSnapshotIndex < s.AppliedIndex, $"snapshot {s.LastSnapshotIndex}, applied {s.AppliedIndex}");
    }

    [Fact]
    public async Task FailingSnapshots_PauseInsteadOfRetryingAfterEveryWrite()
    {
        var log = new LogCapture();
        await using var c = new NodeCluster { LoggerFactory = log, Configure = o => o with { SnapshotThreshold = 20 } };
        var n = await c.StartAsync("n1", bootstrap: true);
        await c.WaitForLeaderAsync();
        // Every snapshot now fails: its temporary file cannot be created.
        var snapshots = Path.Combine(c.OptionsFor("n1", false).DataDirectory, NodeStorage.SnapshotFolder);
        Directory.Delete(snapshots, recursive: true);

        for (var i = 0; i < 200; i++) await n.SetAsync(Pairs(("k", "v" + i)));

        // Writes go on; one snapshot was tried and failed, and no other until the pause is over.
        Assert.Equal("v199", await n.GetAsync("k", ReadLevel.Linearizable));
        await NodeCluster.Eventually(() => Task.FromResult(log.Lines.Any(l => l.Text.Contains("writing snapshot"))), "the failed snapshot to be logged");
        await Task.Delay(200);
        var failures = log.Lines.Count(l => l.Level == LogLevel.Error && l.Text.Contains("writing snapshot"));
        Assert.Equal(1, failures);
        // One asked for by an operator is still tried at once, and its failure reported to the caller.
        var manual = await Assert.ThrowsAsync<NodeException>(() => n.SnapshotAsync());
        Assert.Contains("writing the snapshot failed", manual.Message);

        // The directory is back: an operator's snapshot succeeds, and that ends the pause for the automatic ones.
        Directory.CreateDirectory(snapshots);
        var taken = await n.SnapshotAsync();
        Assert.True(taken > 0);
        for (var i = 0; i < 100; i++) await n.SetAsync(Pairs(("k", "again" + i)));
        await NodeCluster.Eventually(async () => (await n.GetStatusAsync()).LastSnapshotIndex > taken, "an automatic snapshot after the pause ended", TimeSpan.FromSeconds(5));
    }

    [Fact]
    public async Task ThreeNodes_ReplicateAndFollowersServeLinearizableReads()
    {
        await using var c = new NodeCluster();
        await c.StartClusterAsync(3);
        var leader = await c.LeaderAsync();
        await leader.SetAsync(Pairs(("user1", "batman")));
        foreach (var node in c.Nodes.Values) Assert.Equal("batman", await node.GetAsync("user1", ReadLevel.Linearizable));
        var status = await leader.GetStatusAsync();
        Assert.Equal(3, status.Servers.Count);
        Assert.All(status.Servers, s => Assert.True(s.Voter));
    }

    [Fact]
    public async Task Embedded_CallsOnAFollowerAreForwardedToTheLeader()
    {
        await using var c = new NodeCluster();
        await c.StartClusterAsync(3);
        var leader = await c.LeaderAsync();
        var follower = c.Nodes.Values.First(n => n != leader);
        Assert.True(await follower.SetAsync(Pairs(("via", "follower"))) > 0);
        Assert.Equal("follower", await follower.GetAsync("via", ReadLevel.Weak));
        Assert.Equal("follower", await follower.GetAsync("via", ReadLevel.Strong));
        await follower.DeleteAsync("via");
        Assert.Null(await leader.GetAsync("via", ReadLevel.Linearizable));
        // Errors come back as they were on the leader.
        var e = await Assert.ThrowsAsync<NodeException>(() => follower.RemoveAsync("ghost"));
        Assert.Equal(NodeErrorKind.NotFound, e.Kind);
    }

    [Fact]
    public async Task WithoutForwarding_AFollowerSaysWhoLeads()
    {
        await using var c = new NodeCluster { Configure = o => o with { ForwardToLeader = false } };
        await c.StartClusterAsync(3);
        var leader = await c.LeaderAsync();
        var follower = c.Nodes.Values.First(n => n != leader);
        var e = await Assert.ThrowsAsync<NodeException>(() => follower.SetAsync(Pairs(("x", "y"))));
        Assert.Equal(NodeErrorKind.NotLeader, e.Kind);
        Assert.Equal(NodeCluster.HttpAddressOf(leader.Id), e.LeaderHttpAddress);
    }

    [Fact]
    public async Task LeaderStops_NewLeaderTakesOverAndWritesGoOn_RestartedNodeCatchesUp()
    {
        await using var c = new NodeCluster();
        await c.StartClusterAsync(3);
        var old = await c.LeaderAsync();
        await old.SetAsync(Pairs(("k1", "v1")));
        var oldId = old.Id;
        await c.StopAsync(oldId);
        var leader = await c.LeaderAsync();
        Assert.NotEqual(oldId, leader.Id);
        await c.SetOnLeaderAsync(Pairs(("k2", "v2")));
        var back = await c.StartAsync(oldId);
        await NodeCluster.Eventually(async () => await back.GetAsync("k2", ReadLevel.None) == "v2", "restarted node catches up");
        Assert.Equal("v1", await back.GetAsync("k1", ReadLevel.None));
    }

    /// <summary>Starts three nodes, stops a follower, and writes until the leader's log no longer reaches back to it.</summary>
    private static async Task<string> StopOneBehindSnapshotsAsync(NodeCluster c)
    {
        await c.StartClusterAsync(3);
        var leader = await c.LeaderAsync();
        var lagging = c.Nodes.Keys.First(id => id != leader.Id);
        await c.StopAsync(lagging);
        for (var i = 0; i < 200; i++) await c.SetOnLeaderAsync(Pairs(("key" + i, "value" + i)));
        await NodeCluster.Eventually(async () => (await (await c.LeaderAsync()).GetStatusAsync()).LastSnapshotIndex > 100, "the leader takes snapshots");
        return lagging;
    }

    [Fact]
    public async Task NodeDownBeyondTrailingLogs_CatchesUpBySnapshot()
    {
        await using var c = new NodeCluster { Configure = o => o with { SnapshotThreshold = 50, TrailingLogs = 10 } };
        var lagging = await StopOneBehindSnapshotsAsync(c);
        var back = await c.StartAsync(lagging);
        await NodeCluster.Eventually(async () => await back.GetAsync("key199", ReadLevel.None) == "value199", "catch up by snapshot");
        var s = await back.GetStatusAsync();
        Assert.True(s.LastSnapshotIndex > 0, "the lagging node installed a snapshot");
        Assert.Equal(200, s.Keys);
    }

    [Fact]
    public async Task SnapshotTransferLongerThanSeveralElectionTimeouts_IsSentOnce()
    {
        // The leader used to give up on a snapshot after an election timeout and stream it again, every 800 ms here.
        await using var c = new NodeCluster { Configure = o => o with { SnapshotThreshold = 50, TrailingLogs = 10 } };
        var lagging = await StopOneBehindSnapshotsAsync(c);
        var before = c.Network.SnapshotsSent;
        c.Network.SnapshotStall = 4 * c.OptionsFor(lagging, false).ElectionTimeout;
        var back = await c.StartAsync(lagging);
        await NodeCluster.Eventually(async () => await back.GetAsync("key199", ReadLevel.None) == "value199", "catch up by snapshot", TimeSpan.FromSeconds(30));
        Assert.Equal(1, c.Network.SnapshotsSent - before);
    }

    [Fact]
    public async Task WholeClusterRestart_KeepsEveryAcknowledgedWrite()
    {
        await using var c = new NodeCluster { Configure = o => o with { SnapshotThreshold = 30, TrailingLogs = 5 } };
        await c.StartClusterAsync(3);
        var leader = await c.LeaderAsync();
        for (var i = 0; i < 100; i++) await c.SetOnLeaderAsync(Pairs(("k" + i, "v" + i)));
        foreach (var id in c.Nodes.Keys.ToList()) await c.StopAsync(id);
        foreach (var id in new[] { "n1", "n2", "n3" }) await c.StartAsync(id);
        var again = await c.LeaderAsync();
        for (var i = 0; i < 100; i++) Assert.Equal("v" + i, await again.GetAsync("k" + i, ReadLevel.Linearizable));
    }

    [Fact]
    public async Task TransferAndRemove()
    {
        await using var c = new NodeCluster();
        await c.StartClusterAsync(3);
        var leader = await c.LeaderAsync();
        var target = c.Nodes.Keys.First(id => id != leader.Id);
        await leader.TransferLeadershipAsync(target);
        Assert.Equal(target, await c.WaitForLeaderAsync());
        var newLeader = c.Nodes[target];
        var removed = c.Nodes.Keys.First(id => id != target);
        await newLeader.RemoveAsync(removed);
        var status = await newLeader.GetStatusAsync();
        Assert.DoesNotContain(status.Servers, s => s.Id == removed);
        var e = await Assert.ThrowsAsync<NodeException>(() => newLeader.RemoveAsync("ghost"));
        Assert.Equal(NodeErrorKind.NotFound, e.Kind);
        await newLeader.SetAsync(Pairs(("after", "removal")));
    }

    [Fact]
    public async Task A_node_restarted_under_another_id_says_it_is_not_a_member()
    {
        var log = new LogCapture();
        await using var c = new NodeCluster { LoggerFactory = log };
        await c.StartClusterAsync(1);
        await c.StopAsync("n1");
        Assert.DoesNotContain(log.Messages, m => m.Contains("not in the cluster configuration"));

        // Same data directory, another id: what changing -raddr alone does, since the id defaults to it.
        var renamed = c.OptionsFor("n1", bootstrap: false) with { Id = "renamed" };
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        try
        {
            await (await KvNode.StartAsync(renamed, log, _ => c.Network.Transport(renamed.RaftAddress), stop.Token)).DisposeAsync();
        }
        catch (OperationCanceledException)
        {
            // Whether or not it finished starting, the warning comes first.
        }
        Assert.Contains(log.Messages, m => m.Contains("renamed is not in the cluster configuration") && m.Contains("members: n1"));
    }

    [Fact]
    public async Task Join_IsIdempotentAndUpdatesAddresses()
    {
        await using var c = new NodeCluster();
        await c.StartClusterAsync(2);
        var leader = await c.LeaderAsync();
        await leader.JoinAsync(new JoinRequest("n2", NodeCluster.RaftAddressOf("n2"), NodeCluster.HttpAddressOf("n2"), Voter: true));
        var status = await leader.GetStatusAsync();
        Assert.Equal(2, status.Servers.Count);
        await leader.JoinAsync(new JoinRequest("n9", "raft-n9:1", "http-old:1", Voter: false));
        await leader.JoinAsync(new JoinRequest("n9", "raft-n9:1", "http-new:1", Voter: false));
        status = await leader.GetStatusAsync();
        var n9 = Assert.Single(status.Servers, s => s.Id == "n9");
        Assert.Equal("http-new:1", n9.HttpAddress);
        Assert.False(n9.Voter);

        // hraftd's join body has no HTTP address: joining again without one keeps the known one (forwarding needs it).
        await leader.JoinAsync(new JoinRequest("n9", "raft-n9:2", "", Voter: false));
        n9 = Assert.Single((await leader.GetStatusAsync()).Servers, s => s.Id == "n9");
        Assert.Equal(("raft-n9:2", "http-new:1"), (n9.RaftAddress, n9.HttpAddress));
        // ... but not when it moved to another host: the old host's HTTP address would be wrong.
        await leader.JoinAsync(new JoinRequest("n9", "elsewhere:2", "", Voter: false));
        n9 = Assert.Single((await leader.GetStatusAsync()).Servers, s => s.Id == "n9");
        Assert.Equal(("elsewhere:2", ""), (n9.RaftAddress, n9.HttpAddress));

        // Another id at a member's raft address is refused, however the loopback host is spelled.
        await leader.JoinAsync(new JoinRequest("n10", "localhost:5000", "", Voter: false));
        var e = await Assert.ThrowsAsync<NodeException>(() => leader.JoinAsync(new JoinRequest("n11", "127.0.0.1:5000", "", Voter: false)));
        Assert.Equal(NodeErrorKind.BadRequest, e.Kind);
    }

    [Fact]
    public async Task Join_from_another_host_is_refused_while_a_member_listens_on_localhost()
    {
        await using var c = new NodeCluster();
        await c.StartClusterAsync(1);
        var leader = await c.LeaderAsync();
        await leader.JoinAsync(new JoinRequest("n10", "localhost:5000", "", Voter: false));
        // The node at 10.9.8.7 would dial localhost:5000 and reach itself: refused up front, saying what to change.
        var e = await Assert.ThrowsAsync<NodeException>(() => leader.JoinAsync(new JoinRequest("n12", "10.9.8.7:5000", "", Voter: false)));
        Assert.Equal(NodeErrorKind.BadRequest, e.Kind);
        Assert.Contains("another host", e.Message);
        Assert.Contains("--raft-addr", e.Message);
        // A node on this machine may still join.
        await leader.JoinAsync(new JoinRequest("n13", "127.0.0.1:5001", "", Voter: false));
    }

    [Theory]
    [InlineData("n5", "raft-n5", "", "not a host:port")]              // no port
    [InlineData("n5", "a b:1", "", "not a host:port")]
    [InlineData("n5", "raft-n5:+1", "", "not a host:port")]
    [InlineData("n5", "raft-n5:1", "a b:80", "HTTP address")]
    [InlineData("n5", "raft-n5:1", "h:1\r\nInjected: 1", "HTTP address")]
    [InlineData("n5", ":7000", "", "not a host:port")]                // binds anywhere, dials nowhere
    [InlineData("a\nb", "raft-n5:1", "", "control characters")]
    [InlineData("n5", "raft-n1:12000", "", "already used by node 'n1'")] // another id at a member's address
    public async Task Join_refuses_what_would_break_the_configuration(string id, string raft, string http, string problem)
    {
        await using var c = new NodeCluster();
        await c.StartClusterAsync(1);
        var leader = await c.LeaderAsync();
        var before = Members(await leader.GetStatusAsync());
        var e = await Assert.ThrowsAsync<NodeException>(() => leader.JoinAsync(new JoinRequest(id, raft, http, Voter: true)));
        Assert.Equal(NodeErrorKind.BadRequest, e.Kind);
        Assert.Contains(problem, e.Message);
        Assert.Equal(before, Members(await leader.GetStatusAsync()));
    }

    private static List<(string, string, string, bool)> Members(NodeStatus status) =>
        status.Servers.Select(s => (s.Id, s.RaftAddress, s.HttpAddress, s.Voter)).ToList();
}
