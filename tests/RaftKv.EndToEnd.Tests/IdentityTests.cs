using System.Net;
using System.Text;

namespace RaftKv.EndToEnd.Tests;

/// <summary>
/// Node and cluster identity against real raftkvd processes: a node that lost its data never forks the cluster, and
/// two clusters never mix. Each scenario is one the issue reproduced by hand (and each lost writes or wedged a cluster).
/// </summary>
public sealed class IdentityTests
{
    private static void Wipe(E2eCluster c, string name) => Directory.Delete(c.DataDir(name), recursive: true);

    private static async Task<string> ClusterIdAsync(E2eCluster c, RaftkvdProcess n) =>
        (await c.StatusAsync(n)).GetProperty("cluster_id").GetString()!;

    /// <summary>
    /// hraftd style: the founder (no -join) loses its data and is started again with its original command. It founds
    /// a new cluster, as asked, but the two never exchange messages: the old cluster keeps every write and elects a
    /// leader of its own, the new one's writes stay its own, and both logs say what happened.
    /// </summary>
    [Fact]
    public Task WipedFounder_RestartedAlone_FoundsAnotherCluster_ThatNeverMixesWithTheOld() => E2eCluster.Scenario(async c =>
    {
        await c.StartClusterAsync(3);
        var oldLeader = await c.LeaderAsync();
        for (var i = 0; i < 10; i++)
        {
            using var r = await c.SetAsync(oldLeader, "k" + i, "v" + i);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        var oldCluster = await ClusterIdAsync(c, c.Nodes["node1"]);
        var node0 = c.Nodes["node0"];
        node0.Kill();
        Wipe(c, "node0");
        var fresh = await c.WaitReadyAsync(c.Start("node0", null, null, node0.HttpPort, node0.RaftPort));
        Assert.NotEqual(oldCluster, await ClusterIdAsync(c, fresh));
        using (var r = await c.SetAsync(fresh, "w", "only-in-the-new-cluster")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);

        // The old cluster: node1 and node2 elect a leader between them and keep everything.
        RaftkvdProcess? leader = null;
        await RaftkvdCluster.Eventually(async () =>
        {
            foreach (var n in new[] { c.Nodes["node1"], c.Nodes["node2"] })
            {
                if ((await c.StatsAsync(n)).GetProperty("state").GetString() == "Leader") leader = n;
            }
            return leader is not null;
        }, "a leader among node1 and node2");
        using (var r = await c.SetAsync(leader!, "after", "the-wipe")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        foreach (var n in new[] { c.Nodes["node1"], c.Nodes["node2"] })
        {
            Assert.Equal(oldCluster, await ClusterIdAsync(c, n));
            Assert.Equal("v9", await c.GetAsync(n, "k9", "none"));
            Assert.Null(await c.GetAsync(n, "w", "none"));
        }
        Assert.Null(await c.GetAsync(fresh, "k9"));
        Assert.Equal("only-in-the-new-cluster", await c.GetAsync(fresh, "w"));
        Assert.DoesNotContain("node1", await c.ClusterServersAsync(fresh));

        // Both sides say so: the old members still call node0, which refuses them.
        await RaftkvdCluster.Eventually(() => Task.FromResult(
                new[] { c.Nodes["node1"], c.Nodes["node2"] }.Any(n => n.Output.Contains("node0 at", StringComparison.Ordinal) && n.Output.Contains("belongs to another cluster", StringComparison.Ordinal))),
            "the old cluster logging that node0 is of another cluster");
        await RaftkvdCluster.Eventually(() => Task.FromResult(fresh.Output.Contains("refused node", StringComparison.Ordinal) && fresh.Output.Contains("founded anew", StringComparison.Ordinal)),
            "the new node0 logging that it refuses the old members");
    });

    /// <summary>
    /// A follower loses its data and is started again with its original command (-join). It rejoins as a new
    /// incarnation: the leader replaces the old one as a non-voter, catches it up and promotes it, with nothing done
    /// by the operator. Until it holds the data it is not ready.
    /// </summary>
    [Fact]
    public Task WipedFollower_RestartedWithJoin_RejoinsAsANewIncarnation_AndCatchesUp() => E2eCluster.Scenario(async c =>
    {
        await c.StartClusterAsync(3);
        var leader = await c.LeaderAsync();
        for (var i = 0; i < 50; i++)
        {
            using var r = await c.SetAsync(leader, "k" + i, "v" + i);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        var victim = c.Nodes.Values.First(n => n != leader && n.Name != "node0");
        var before = (await c.StatusAsync(victim)).GetProperty("incarnation").GetString();
        victim.Kill();
        Wipe(c, victim.Name);
        var back = c.Start(victim.Name, c.Nodes["node0"].HttpAddress, null, victim.HttpPort, victim.RaftPort);
        await c.WaitReadyAsync(back, TimeSpan.FromSeconds(60));
        // Ready means caught up: every key is there at once, read locally.
        Assert.Equal("v49", await c.GetAsync(back, "k49", "none"));
        Assert.Equal("v0", await c.GetAsync(back, "k0", "none"));
        // Ready as a non-voter once caught up; promoted to voter right after.
        await RaftkvdCluster.Eventually(async () => (await c.StatusAsync(back)).GetProperty("membership").GetString() == "voter", "the rejoined node promoted to voter");
        var status = await c.StatusAsync(back);
        Assert.NotEqual(before, status.GetProperty("incarnation").GetString());
        leader = await c.LeaderAsync();
        await RaftkvdCluster.Eventually(async () =>
        {
            var stats = await c.StatsAsync(leader);
            return stats.GetProperty("latest_configuration").EnumerateArray().Any(s =>
                s.GetProperty("id").GetString() == back.Name && s.GetProperty("suffrage").GetString() == "Voter"
                && s.GetProperty("incarnation").GetString() == status.GetProperty("incarnation").GetString());
        }, "the new incarnation as a voter in the leader's configuration");
        using (var r = await c.SetAsync(leader, "after", "rejoin")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        await RaftkvdCluster.Eventually(async () => await c.GetAsync(back, "after", "none") == "rejoin", "the rejoined node receiving new writes");
    });

    /// <summary>
    /// raft-example style: a node started on its own (so it founded a cluster) is then added to another cluster. The
    /// join is refused with 409, the node is not left in the configuration, and the cluster keeps working.
    /// </summary>
    [Fact]
    public Task AddingANodeOfAnotherCluster_Is409_AndWedgesNeither() => E2eCluster.Scenario(async c =>
    {
        var a = await c.WaitReadyAsync(c.Start("node0"));
        var b = await c.WaitReadyAsync(c.Start("other"));
        var body = $"{{\"id\":\"other\",\"addr\":\"{b.RaftAddress}\",\"http_addr\":\"{b.HttpAddress}\"}}";
        using (var r = await c.Http.PostAsync(new Uri(a.BaseUri, "/join"), new StringContent(body, Encoding.UTF8, "application/json")))
        {
            Assert.Equal(HttpStatusCode.Conflict, r.StatusCode);
            var text = await r.Content.ReadAsStringAsync();
            Assert.Contains("belongs to another cluster", text);
            Assert.Contains("empty its data directory", text);
        }
        await RaftkvdCluster.Eventually(async () => !(await c.ClusterServersAsync(a)).Contains("other"), "the refused node out of the configuration");
        using (var r = await c.SetAsync(a, "still", "writable")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        using (var r = await c.SetAsync(b, "also", "writable")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Null(await c.GetAsync(a, "also"));
    });
}
