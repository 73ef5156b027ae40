using System.Net;
using System.Text;
using System.Text.Json;

namespace RaftKv.EndToEnd.Tests;

/// <summary>hraftd's walkthroughs and RaftKv's promises, against real raftkvd processes.</summary>
public sealed class ClusterTests
{
    [Fact]
    public Task SingleNode_SetsAndGets() => E2eCluster.Scenario(async c =>
    {
        var n = await c.WaitReadyAsync(c.Start("node0"));
        using var set = await c.SetAsync(n, "user1", "batman");
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        Assert.Equal("batman", await c.GetAsync(n, "user1"));
        Assert.Null(await c.GetAsync(n, "nobody"));
    });

    [Fact]
    public Task ThreeNodes_FormWithJoin_ReplicateAndForwardFollowerWrites() => E2eCluster.Scenario(async c =>
    {
        await c.StartClusterAsync(3);
        var leader = await c.LeaderAsync();
        using (var r = await c.SetAsync(leader, "user1", "batman")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        foreach (var n in c.Nodes.Values) Assert.Equal("batman", await c.GetAsync(n, "user1"));
        // A write sent to a follower is forwarded to the leader.
        var follower = c.Nodes.Values.First(n => n != leader);
        using (var r = await c.SetAsync(follower, "user2", "robin")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        foreach (var n in c.Nodes.Values) Assert.Equal("robin", await c.GetAsync(n, "user2"));
        // ?redirect=true answers 307 pointing at the leader instead.
        using var noFollow = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        using var redirected = await noFollow.PostAsync(new Uri(follower.BaseUri, "/key?redirect=true"), new StringContent("{\"a\":\"b\"}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.TemporaryRedirect, redirected.StatusCode);
        Assert.Contains(leader.HttpPort.ToString(System.Globalization.CultureInfo.InvariantCulture), redirected.Headers.Location!.ToString());
    });

    [Fact]
    public Task EverySeedDialect_Works() => E2eCluster.Scenario(async c =>
    {
        await c.StartClusterAsync(3);
        var leader = await c.LeaderAsync();
        var follower = c.Nodes.Values.First(n => n != leader);
        // raftd: raw values under /db.
        using (var r = await c.Http.PostAsync(new Uri(follower.BaseUri, "/db/color"), new StringContent("blue"))) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal("blue", await c.Http.GetStringAsync(new Uri(leader.BaseUri, "/db/color")));
        // The fork's /hraftd prefix, stats and cluster view.
        using (var r = await c.Http.PostAsync(new Uri(leader.BaseUri, "/hraftd/key"), new StringContent("{\"foo\":\"bar\"}", Encoding.UTF8, "application/json")))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        var got = JsonDocument.Parse(await c.Http.GetStringAsync(new Uri(follower.BaseUri, "/hraftd/key/foo"))).RootElement;
        Assert.Equal("bar", got.GetProperty("foo").GetString());
        var stats = await c.StatsAsync(leader);
        Assert.Equal("Leader", stats.GetProperty("state").GetString());
        Assert.Equal(3, stats.GetProperty("latest_configuration").GetArrayLength());
        foreach (var field in new[] { "applied_index", "commit_index", "fsm_pending", "last_contact", "last_log_index", "last_log_term", "last_snapshot_index", "last_snapshot_term", "num_peers", "term" })
            Assert.True(stats.TryGetProperty(field, out _), "missing " + field);
        var cluster = JsonDocument.Parse(await c.Http.GetStringAsync(new Uri(follower.BaseUri, "/hraftd/raft/cluster"))).RootElement;
        Assert.Equal(3, cluster.GetProperty("servers").GetArrayLength());
        Assert.Equal(leader.Name, cluster.GetProperty("leader").GetProperty("id").GetString());
        // Deletes, and every read level.
        using (var r = await c.Http.DeleteAsync(new Uri(follower.BaseUri, "/key/foo"))) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        foreach (var level in new[] { "none", "weak", "linearizable", "strong" })
        {
            if (level != "none") Assert.Null(await c.GetAsync(follower, "foo", level));
            Assert.Equal("blue", await c.Http.GetStringAsync(new Uri(follower.BaseUri, $"/db/color?level={level}")));
        }
        using (var r = await c.Http.GetAsync(new Uri(leader.BaseUri, "/status"))) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        using (var r = await c.Http.GetAsync(new Uri(leader.BaseUri, "/livez"))) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
    });

    [Fact]
    public Task KillLeader_NewLeaderTakesOver_KilledNodeRestartsWithoutJoinAndCatchesUp() => E2eCluster.Scenario(async c =>
    {
        await c.StartClusterAsync(3);
        var leader = await c.LeaderAsync();
        using (var r = await c.SetAsync(leader, "before", "1")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        leader.Kill(); // kill -9
        var killed = leader.Name;
        var started = DateTime.UtcNow;
        var next = await c.LeaderAsync(TimeSpan.FromSeconds(10));
        Assert.NotEqual(killed, next.Name);
        Assert.True(DateTime.UtcNow - started < TimeSpan.FromSeconds(10));
        for (var i = 0; i < 20; i++)
        {
            using var r = await c.SetAsync(next, "after" + i, "v" + i);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        var back = c.Restart(killed);
        await c.WaitReadyAsync(back);
        await E2eCluster.Eventually(async () => await c.GetAsync(back, "after19", "none") == "v19", "the restarted node catches up");
        Assert.Equal("1", await c.GetAsync(back, "before", "none"));
    });

    [Fact]
    public Task NodeDownLongerThanTrailingLogs_CatchesUpBySnapshot() => E2eCluster.Scenario(async c =>
    {
        string[] small = ["--snapshot-threshold", "40", "--trailing-logs", "10"];
        await c.StartClusterAsync(3, small);
        var leader = await c.LeaderAsync();
        var down = c.Nodes.Values.First(n => n != leader);
        down.Kill();
        for (var i = 0; i < 150; i++)
        {
            using var r = await c.SetAsync(leader, "k" + i, "v" + i);
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        }
        await E2eCluster.Eventually(async () => (await c.StatsAsync(leader)).GetProperty("last_snapshot_index").GetString() is { } s && ulong.Parse(s, System.Globalization.CultureInfo.InvariantCulture) > 50, "a snapshot on the leader");
        var back = c.Restart(down.Name, small);
        await c.WaitReadyAsync(back);
        await E2eCluster.Eventually(async () => await c.GetAsync(back, "k149", "none") == "v149", "catch-up by snapshot");
        Assert.Equal("v0", await c.GetAsync(back, "k0", "none"));
    });

    [Fact]
    public Task RemovedNode_LeavesTheCluster() => E2eCluster.Scenario(async c =>
    {
        await c.StartClusterAsync(3);
        var leader = await c.LeaderAsync();
        var victim = c.Nodes.Values.First(n => n != leader);
        var follower = c.Nodes.Values.First(n => n != leader && n != victim);
        using (var req = new HttpRequestMessage(HttpMethod.Delete, new Uri(follower.BaseUri, "/raft/remove")) { Content = new StringContent($"{{\"id\":\"{victim.Name}\"}}", Encoding.UTF8, "application/json") })
        using (var r = await c.Http.SendAsync(req))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        await E2eCluster.Eventually(async () => !(await c.ClusterServersAsync(leader)).Contains(victim.Name), "the configuration without the removed node");
        using (var req = new HttpRequestMessage(HttpMethod.Delete, new Uri(leader.BaseUri, "/raft/remove")) { Content = new StringContent("{\"id\":\"ghost\"}", Encoding.UTF8, "application/json") })
        using (var r = await c.Http.SendAsync(req))
            Assert.Equal(HttpStatusCode.NotFound, r.StatusCode);
        using (var r = await c.SetAsync(leader, "after", "removal")) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        // The removed node hears of it and says so, rather than wait for a leader forever.
        await E2eCluster.Eventually(async () =>
        {
            using var r = await c.Http.GetAsync(new Uri(victim.BaseUri, "/readyz"));
            return r.StatusCode == HttpStatusCode.ServiceUnavailable && (await r.Content.ReadAsStringAsync()).Contains("removed from the cluster", StringComparison.Ordinal);
        }, "the removed node's /readyz saying it was removed");
        Assert.Equal("removed", (await c.StatusAsync(victim)).GetProperty("membership").GetString());
        using (var r = await c.SetAsync(victim, "to", "a-removed-node"))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
            Assert.Contains("removed from the cluster", await r.Content.ReadAsStringAsync());
        }
        // A linearizable read (the default level) too: it says why, rather than wait for a leader it will never hear.
        using (var r = await c.Http.GetAsync(new Uri(victim.BaseUri, "/key/after")))
        {
            Assert.Equal(HttpStatusCode.ServiceUnavailable, r.StatusCode);
            Assert.Contains("removed from the cluster", await r.Content.ReadAsStringAsync());
        }
    });

    [Fact]
    public Task WholeClusterKilledAndRestarted_KeepsEveryAcknowledgedKey() => E2eCluster.Scenario(async c =>
    {
        await c.StartClusterAsync(3);
        var leader = await c.LeaderAsync();
        var acked = new List<string>();
        for (var i = 0; i < 50; i++)
        {
            using var r = await c.SetAsync(leader, "key" + i, "value" + i);
            if (r.StatusCode == HttpStatusCode.OK) acked.Add("key" + i);
        }
        Assert.Equal(50, acked.Count);
        foreach (var n in c.Nodes.Values.ToList()) n.Kill();
        foreach (var name in c.Nodes.Keys.ToList()) c.Restart(name);
        var again = await c.LeaderAsync();
        foreach (var k in acked) Assert.Equal("value" + k[3..], await c.GetAsync(again, k));
    });

    [Fact]
    public Task TransferLeadership_MovesTheLeader() => E2eCluster.Scenario(async c =>
    {
        await c.StartClusterAsync(3);
        var leader = await c.LeaderAsync();
        var target = c.Nodes.Values.First(n => n != leader);
        using (var r = await c.Http.PostAsync(new Uri(leader.BaseUri, "/raft/transfer-leadership"), new StringContent($"{{\"id\":\"{target.Name}\"}}", Encoding.UTF8, "application/json")))
            Assert.Equal(HttpStatusCode.OK, r.StatusCode);
        Assert.Equal(target.Name, (await c.LeaderAsync()).Name);
        using (var r = await c.Http.PostAsync(new Uri(target.BaseUri, "/raft/snapshot"), null)) Assert.Equal(HttpStatusCode.OK, r.StatusCode);
    });
}
