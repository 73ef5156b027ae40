using System.Net;
using RaftKv.Node;
using RaftKv.Node.Runtime;
using RaftKv.Raft;

namespace RaftKv.Server.Tests;

/// <summary>
/// Two (or three) real servers in process: a follower whose fake node sees a leader at another server. The node's
/// routing forwards writes and leader reads over HTTP (<c>POST /raft/forward</c>); ?redirect=true answers 307; without
/// a leader, 503 + Retry-After.
/// </summary>
public sealed class ForwardingTests
{
    private static async Task<(RunningServer Leader, RunningServer Follower)> PairAsync(ServerOptions? options = null)
    {
        var leader = await RunningServer.StartAsync(new FakeKvNode("leader"), options);
        var follower = await RunningServer.StartAsync(
            new FakeKvNode("follower") { Role = Role.Follower, LeaderId = "leader", LeaderHttpAddress = leader.Address }, options);
        return (leader, follower);
    }

    [Theory]
    [InlineData("")]
    [InlineData("/hraftd")]
    public async Task Writes_to_a_follower_reach_the_leader(string prefix)
    {
        var (leader, follower) = await PairAsync();
        await using var _ = leader;
        await using var __ = follower;

        var set = await follower.Client.SendAsync(HttpMethod.Post, prefix + "/key", """{"a/b":"1"}""");
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        Assert.Equal("{}", await set.Content.ReadAsStringAsync());
        Assert.Equal(leader.Address, set.Headers.GetValues("X-RaftKv-Leader").Single());
        Assert.Equal("1", set.Headers.GetValues(ServerApp.IndexHeader).Single());
        Assert.Equal("1", leader.Node.Data["a/b"]);
        Assert.Empty(follower.Node.Data);

        Assert.Equal(HttpStatusCode.OK, (await follower.Client.PostAsync(prefix + "/db/raw%2Fkey", new StringContent("v"))).StatusCode);
        Assert.Equal("v", leader.Node.Data["raw/key"]);

        Assert.Equal(HttpStatusCode.OK, (await follower.Client.DeleteAsync(prefix + "/key/a%2Fb")).StatusCode);
        Assert.False(leader.Node.Data.ContainsKey("a/b"));
    }

    [Theory]
    [InlineData("/db/dir\\file", "dir\\file")]
    [InlineData("/db/p/../q", "p/../q")]
    [InlineData("/db/m/%2e%2e/n", "m/../n")]
    [InlineData("/db/a/.", "a/.")]
    [InlineData("/hraftd/db/./x", "./x")]
    public async Task A_forwarded_key_reaches_the_leader_as_the_client_spelled_it(string path, string key)
    {
        var (leader, follower) = await PairAsync();
        await using var _ = leader;
        await using var __ = follower;

        // Sent raw: a canonicalizing client would itself rewrite the path before the follower ever saw it.
        var raw = new Uri("http://" + follower.Address + path, new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true });
        using var set = await follower.Client.SendAsync(new HttpRequestMessage(HttpMethod.Post, raw) { Content = new StringContent("v") });
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        Assert.Equal(key, Assert.Single(leader.Node.Data).Key);

        using var delete = await follower.Client.SendAsync(new HttpRequestMessage(HttpMethod.Delete, raw));
        Assert.Equal(HttpStatusCode.OK, delete.StatusCode);
        Assert.Empty(leader.Node.Data);
    }

    [Fact]
    public async Task Reads_above_none_are_forwarded_none_is_local()
    {
        var (leader, follower) = await PairAsync();
        await using var _ = leader;
        await using var __ = follower;
        leader.Node.Data["k"] = "from-leader";
        follower.Node.Data["k"] = "stale";

        Assert.Equal("""{"k":"from-leader"}""", await follower.Client.GetStringAsync("/key/k"));
        Assert.Equal("""{"k":"from-leader"}""", await follower.Client.GetStringAsync("/key/k?level=weak"));
        Assert.Equal("from-leader", await follower.Client.GetStringAsync("/db/k?level=strong"));
        Assert.Equal("""{"k":"stale"}""", await follower.Client.GetStringAsync("/key/k?level=none"));
        Assert.Equal([ReadLevel.Linearizable, ReadLevel.Weak, ReadLevel.Strong], leader.Node.Reads);

        // The leader's 404 is relayed as is.
        var missing = await follower.Client.GetAsync("/key/nope");
        Assert.Equal("key not found: nope", await missing.AssertErrorAsync(HttpStatusCode.NotFound));
    }

    [Fact]
    public async Task Membership_changes_are_forwarded_snapshots_are_not()
    {
        var (leader, follower) = await PairAsync();
        await using var _ = leader;
        await using var __ = follower;
        leader.Node.Servers.Add(new ServerStatus("n3", "r3", "h3", true, "Follower", 0));

        Assert.Equal(HttpStatusCode.OK, (await follower.Client.SendAsync(HttpMethod.Post, "/join", """{"id":"n4","addr":"r4"}""")).StatusCode);
        Assert.Equal("n4", Assert.Single(leader.Node.Joins).Id);
        Assert.Equal(HttpStatusCode.OK, (await follower.Client.SendAsync(HttpMethod.Delete, "/raft/remove", """{"id":"n3"}""")).StatusCode);
        Assert.Equal(["n3"], leader.Node.Removes);
        var unknown = await follower.Client.SendAsync(HttpMethod.Delete, "/raft/remove", """{"id":"n9"}""");
        await unknown.AssertErrorAsync(HttpStatusCode.NotFound);
        Assert.Equal(HttpStatusCode.OK, (await follower.Client.PostAsync("/raft/transfer-leadership", null)).StatusCode);
        Assert.Single(leader.Node.Transfers);

        Assert.Equal(HttpStatusCode.OK, (await follower.Client.PostAsync("/raft/snapshot", null)).StatusCode);
        Assert.Equal("follower", (await (await follower.Client.GetAsync("/status")).JsonAsync()).GetProperty("id").GetString());
    }

    [Fact]
    public async Task Redirect_mode_answers_307_with_the_leaders_location()
    {
        var (leader, follower) = await PairAsync();
        await using var _ = leader;
        await using var __ = follower;

        var response = await follower.Client.SendAsync(HttpMethod.Post, "/hraftd/key?redirect=true", """{"a":"1"}""");
        Assert.Equal(HttpStatusCode.TemporaryRedirect, response.StatusCode);
        Assert.Equal($"http://{leader.Address}/hraftd/key?redirect=true", response.Headers.Location?.ToString());
        Assert.Empty(leader.Node.Sets);

        var read = await follower.Client.GetAsync("/key/a%2Fb?redirect=true&level=strong");
        Assert.Equal($"http://{leader.Address}/key/a%2Fb?redirect=true&level=strong", read.Headers.Location?.OriginalString);

        // A value that is neither yes nor no is refused, not read as "forward": the client asked not to be forwarded.
        var unclear = await follower.Client.SendAsync(HttpMethod.Post, "/key?redirect=yes", """{"a":"1"}""");
        Assert.Contains("redirect", await unclear.AssertErrorAsync(HttpStatusCode.BadRequest));
        Assert.Empty(leader.Node.Sets);
        Assert.Equal(HttpStatusCode.OK, (await follower.Client.SendAsync(HttpMethod.Post, "/key?redirect=false", """{"a":"1"}""")).StatusCode);
        Assert.Single(leader.Node.Sets);
    }

    [Fact]
    public async Task A_forwarded_request_is_never_forwarded_again()
    {
        var (leader, follower) = await PairAsync();
        await using var _ = leader;
        await using var __ = follower;

        // A call forwarded to a node that is not the leader (its sender's view was stale) is refused, naming the
        // leader, for the sender's routing to follow: forwarding it on could bounce it between two stale nodes.
        var call = new ForwardedRequest(ForwardedOp.Set, Pairs: [KeyValuePair.Create("a", "1")]).Encode();
        using var response = await follower.Client.PostAsync("/raft/forward", new ByteArrayContent(call) { Headers = { ContentType = new("application/octet-stream") } });
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var answer = ForwardedResult.Decode(await response.Content.ReadAsByteArrayAsync());
        Assert.Equal((NodeErrorKind.NotLeader, "leader", leader.Address), (answer.Error?.Kind, answer.Error?.LeaderId, answer.Error?.LeaderHttpAddress));
        Assert.Empty(leader.Node.Sets);
        Assert.Empty(follower.Node.Sets);
    }

    [Fact]
    public async Task The_forward_endpoint_answers_a_client_in_json()
    {
        var (leader, follower) = await PairAsync();
        await using var _ = leader;
        await using var __ = follower;

        // What `curl -d x .../raft/forward` sends: not the nodes' encoding, so a readable refusal, not a binary 200.
        using var response = await follower.Client.PostAsync("/raft/forward", new StringContent("x", System.Text.Encoding.UTF8, "application/x-www-form-urlencoded"));
        Assert.Equal(HttpStatusCode.UnsupportedMediaType, response.StatusCode);
        Assert.Contains("between nodes", await response.Content.ReadAsStringAsync());
        Assert.Empty(leader.Node.Sets);
    }

    [Fact]
    public async Task Stale_leader_pointers_end_in_503_not_a_loop()
    {
        var options = new ServerOptions { RequestTimeout = TimeSpan.FromMilliseconds(300) };
        await using var a = await RunningServer.StartAsync(new FakeKvNode("a") { Role = Role.Follower, LeaderId = "b" }, options);
        await using var b = await RunningServer.StartAsync(new FakeKvNode("b") { Role = Role.Follower, LeaderId = "a", LeaderHttpAddress = a.Address }, options);
        a.Node.LeaderHttpAddress = b.Address;

        var response = await a.Client.SendAsync(HttpMethod.Post, "/key", """{"k":"v"}""");
        // a forwards to b, b refuses naming a (it never forwards a forwarded call), a follows that once, then waits and
        // asks again, until the deadline.
        // If the deadline lands while a forward is in flight the write's fate is unknown, so that ending is 504, not 503.
        if (response.StatusCode == HttpStatusCode.GatewayTimeout)
        {
            Assert.Contains("may or may not", await response.AssertErrorAsync(HttpStatusCode.GatewayTimeout));
        }
        else
        {
            Assert.Equal("no leader", await response.AssertErrorAsync(HttpStatusCode.ServiceUnavailable));
            Assert.NotNull(response.Headers.RetryAfter);
        }
        Assert.Empty(a.Node.Sets);
        Assert.Empty(b.Node.Sets);
    }

    [Fact]
    public async Task No_leader_waits_until_the_request_timeout_then_503_with_retry_after()
    {
        var node = new FakeKvNode { Role = Role.Candidate };
        await using var server = await RunningServer.StartAsync(node, new ServerOptions { RequestTimeout = TimeSpan.FromMilliseconds(300) });
        var response = await server.Client.SendAsync(HttpMethod.Post, "/key", """{"k":"v"}""");
        Assert.Equal("no leader", await response.AssertErrorAsync(HttpStatusCode.ServiceUnavailable));
        Assert.Equal(TimeSpan.FromSeconds(1), response.Headers.RetryAfter?.Delta);
        var body = await response.JsonAsync();
        Assert.Contains("election", body.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task A_leader_elected_during_the_wait_serves_the_request()
    {
        var node = new FakeKvNode { Role = Role.Candidate };
        var looks = 0;
        node.OnLeaderViewRead = n =>
        {
            // The third look finds the election over.
            looks = n;
            if (n == 3)
            {
                node.Role = Role.Leader;
            }
        };
        await using var server = await RunningServer.StartAsync(node);
        var response = await server.Client.SendAsync(HttpMethod.Post, "/key", """{"k":"v"}""");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("v", node.Data["k"]);
        Assert.True(looks >= 3, $"{looks} looks at the leader view");
    }

    [Fact]
    public async Task Unreachable_leader_is_retried_until_a_reachable_one_is_known()
    {
        await using var leader = await RunningServer.StartAsync(new FakeKvNode("new-leader"));
        var node = new FakeKvNode { Role = Role.Follower, LeaderId = "gone", LeaderHttpAddress = $"127.0.0.1:{FreePorts.Pick()}" };
        var looks = 0;
        node.OnLeaderViewRead = n =>
        {
            // After two refused connections, the node learns of the new leader (as after an election).
            looks = n;
            if (n == 3)
            {
                node.LeaderId = "new-leader";
                node.LeaderHttpAddress = leader.Address;
            }
        };
        await using var server = await RunningServer.StartAsync(node);
        var response = await server.Client.SendAsync(HttpMethod.Post, "/key", """{"k":"v"}""");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal("v", leader.Node.Data["k"]);
        Assert.True(looks >= 3, $"{looks} looks at the leader view");
    }
}
