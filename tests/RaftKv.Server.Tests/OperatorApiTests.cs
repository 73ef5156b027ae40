using System.Net;
using RaftKv.Node;
using RaftKv.Raft;

namespace RaftKv.Server.Tests;

/// <summary>The fork's /raft/stats, /raft/cluster, /raft/remove, and /raft/transfer-leadership, /raft/snapshot.</summary>
public sealed class OperatorApiTests
{
    private static FakeKvNode Follower()
    {
        var node = new FakeKvNode("n2") { Role = Role.Follower, LeaderId = "n1", LastLogIndex = 9, CommitIndex = 8, AppliedIndex = 8 };
        node.Servers.Add(new ServerStatus("n1", "raft-n1", "h1:11000", true, "Leader", null));
        node.Servers.Add(new ServerStatus("n2", "raft-n2", "h2:11000", true, "Follower", null));
        node.Servers.Add(new ServerStatus("n3", "raft-n3", "h3:11000", false, "Follower", null));
        return node;
    }

    [Theory]
    [InlineData("")]
    [InlineData("/hraftd")]
    public async Task Stats_are_hashicorp_style_strings(string prefix)
    {
        await using var server = await RunningServer.StartAsync(Follower());
        var stats = await (await server.Client.GetAsync(prefix + "/raft/stats")).JsonAsync();
        foreach (var name in new[] { "applied_index", "commit_index", "fsm_pending", "last_contact", "last_log_index", "last_log_term",
                     "last_snapshot_index", "last_snapshot_term", "latest_configuration_index", "num_peers", "state", "term" })
        {
            Assert.Equal(System.Text.Json.JsonValueKind.String, stats.GetProperty(name).ValueKind);
        }
        Assert.Equal("8", stats.GetProperty("applied_index").GetString());
        Assert.Equal("9", stats.GetProperty("last_log_index").GetString());
        Assert.Equal("3.5ms", stats.GetProperty("last_contact").GetString());
        Assert.Equal("Follower", stats.GetProperty("state").GetString());
        Assert.Equal("1", stats.GetProperty("num_peers").GetString()); // the other voter
        Assert.Equal("1", stats.GetProperty("latest_configuration_index").GetString());
        var configuration = stats.GetProperty("latest_configuration").EnumerateArray().ToList();
        Assert.Equal(3, configuration.Count);
        Assert.Equal("raft-n1", configuration[0].GetProperty("address").GetString());
        Assert.Equal("Voter", configuration[0].GetProperty("suffrage").GetString());
        Assert.Equal("Nonvoter", configuration[2].GetProperty("suffrage").GetString());
    }

    [Fact]
    public async Task Cluster_lists_current_leader_and_servers()
    {
        await using var server = await RunningServer.StartAsync(Follower());
        var cluster = await (await server.Client.GetAsync("/hraftd/raft/cluster")).JsonAsync();
        Assert.Equal("n2", cluster.GetProperty("current").GetProperty("id").GetString());
        Assert.Equal("raft-n2", cluster.GetProperty("current").GetProperty("address").GetString());
        Assert.Equal("Follower", cluster.GetProperty("current").GetProperty("state").GetString());
        Assert.Equal("n1", cluster.GetProperty("leader").GetProperty("id").GetString());
        Assert.Equal("Leader", cluster.GetProperty("leader").GetProperty("state").GetString());
        Assert.Equal(["n1", "n2", "n3"], cluster.GetProperty("servers").EnumerateArray().Select(s => s.GetProperty("id").GetString()));
    }

    [Fact]
    public async Task A_pre_candidate_is_named_alike_on_every_status_path()
    {
        await using var server = await RunningServer.StartAsync(new FakeKvNode { Role = Role.PreCandidate });
        var stats = await (await server.Client.GetAsync("/raft/stats")).JsonAsync();
        var cluster = await (await server.Client.GetAsync("/raft/cluster")).JsonAsync();
        var status = await (await server.Client.GetAsync("/status")).Content.ReadAsStringAsync();
        Assert.Equal("PreCandidate", stats.GetProperty("state").GetString());
        Assert.Equal("PreCandidate", cluster.GetProperty("current").GetProperty("state").GetString());
        Assert.Contains("\"PreCandidate\"", status);
        Assert.DoesNotContain("\"Candidate\"", status);
    }

    [Fact]
    public async Task Cluster_leader_is_null_without_a_leader()
    {
        await using var server = await RunningServer.StartAsync(new FakeKvNode { Role = Role.Candidate });
        var cluster = await (await server.Client.GetAsync("/raft/cluster")).JsonAsync();
        Assert.Equal(System.Text.Json.JsonValueKind.Null, cluster.GetProperty("leader").ValueKind);
    }

    [Fact]
    public async Task Remove_answers_ok_and_404_for_unknown_nodes()
    {
        var node = new FakeKvNode("n1");
        node.Servers.Add(new ServerStatus("n2", "r2", "h2", true, "Follower", 0));
        await using var server = await RunningServer.StartAsync(node);

        var ok = await server.Client.SendAsync(HttpMethod.Delete, "/hraftd/raft/remove", """{"id":"n2"}""");
        Assert.Equal(HttpStatusCode.OK, ok.StatusCode);
        Assert.Equal("""{"ok":true,"msg":"OK"}""", await ok.Content.ReadAsStringAsync());
        Assert.Equal(["n2"], node.Removes);

        var unknown = await server.Client.SendAsync(HttpMethod.Delete, "/raft/remove", """{"id":"n9"}""");
        Assert.Contains("n9", await unknown.AssertErrorAsync(HttpStatusCode.NotFound));

        var missingId = await server.Client.SendAsync(HttpMethod.Delete, "/raft/remove", "{}");
        await missingId.AssertErrorAsync(HttpStatusCode.BadRequest);
    }

    [Fact]
    public async Task Transfer_leadership_with_and_without_target()
    {
        await using var server = await RunningServer.StartAsync();
        Assert.Equal(HttpStatusCode.OK, (await server.Client.SendAsync(HttpMethod.Post, "/raft/transfer-leadership", """{"id":"n3"}""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.Client.PostAsync("/raft/transfer-leadership", null)).StatusCode);
        Assert.Equal(["n3", null], server.Node.Transfers);
    }

    [Fact]
    public async Task Snapshot_is_local_even_on_a_follower()
    {
        var node = new FakeKvNode { Role = Role.Follower, LeaderHttpAddress = "127.0.0.1:1" };
        await using var server = await RunningServer.StartAsync(node);
        var response = await server.Client.PostAsync("/raft/snapshot", null);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(0, (await response.JsonAsync()).GetProperty("index").GetInt32());
    }
}
