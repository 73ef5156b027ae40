using System.Net;
using RaftKv.Node;

namespace RaftKv.Server.Tests;

/// <summary>hraftd's API (POST /key, GET/DELETE /key/{k}, POST /join, GET /status), at its path and under /hraftd.</summary>
public sealed class HraftdApiTests
{
    [Fact]
    public async Task The_longest_key_a_write_accepts_can_be_read_and_deleted()
    {
        await using var server = await RunningServer.StartAsync();
        // Every byte of "é" is percent-encoded in the URL: 3 characters each, the worst case.
        var key = "k" + new string('é', (ServerOptions.DefaultMaxKeyBytes - 1) / 2);
        Assert.Equal(HttpStatusCode.OK, (await server.Client.SendAsync(HttpMethod.Post, "/key", $"{{\"{key}\":\"v\"}}")).StatusCode);
        var path = "/key/" + Uri.EscapeDataString(key);
        Assert.True(path.Length > 3 * 60_000, "the URL is longer than Kestrel's default 8 KiB request line");
        var read = await server.Client.GetAsync(path + "?level=none");
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.Equal("v", (await read.JsonAsync()).GetProperty(key).GetString());
        Assert.Equal(HttpStatusCode.OK, (await server.Client.DeleteAsync(path)).StatusCode);
        Assert.False(server.Node.Data.ContainsKey(key));
    }

    [Theory]
    [InlineData("")]
    [InlineData("/hraftd")]
    public async Task Set_get_delete_round_trip(string prefix)
    {
        await using var server = await RunningServer.StartAsync();
        var set = await server.Client.SendAsync(HttpMethod.Post, prefix + "/key", """{"user1":"batman","user2":"robin"}""");
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);
        Assert.Equal("{}", await set.Content.ReadAsStringAsync());
        Assert.Equal("1", set.Headers.GetValues(ServerApp.IndexHeader).Single());
        // Both pairs went in one atomic SetAsync.
        Assert.Equal(2, Assert.Single(server.Node.Sets).Count);

        var get = await server.Client.GetAsync(prefix + "/key/user1");
        Assert.Equal(HttpStatusCode.OK, get.StatusCode);
        Assert.Equal("""{"user1":"batman"}""", await get.Content.ReadAsStringAsync());

        var delete = await server.Client.DeleteAsync(prefix + "/key/user1");
        Assert.Equal(HttpStatusCode.OK, delete.StatusCode);
        var missing = await server.Client.GetAsync(prefix + "/key/user1");
        Assert.Equal("key not found: user1", await missing.AssertErrorAsync(HttpStatusCode.NotFound));
    }

    [Fact]
    public async Task Keys_are_url_decoded_once_and_may_contain_slashes_and_percents()
    {
        await using var server = await RunningServer.StartAsync();
        var set = await server.Client.SendAsync(HttpMethod.Post, "/key", """{"a/b%2Fc d":"1","ключ":"2"}""");
        Assert.Equal(HttpStatusCode.OK, set.StatusCode);

        var get = await server.Client.GetAsync("/key/a%2Fb%252Fc%20d");
        Assert.Equal("""{"a/b%2Fc d":"1"}""", await get.Content.ReadAsStringAsync());
        Assert.Equal("2", (await (await server.Client.GetAsync("/hraftd/key/%D0%BA%D0%BB%D1%8E%D1%87")).JsonAsync()).GetProperty("ключ").GetString());
        Assert.Equal(HttpStatusCode.NotFound, (await server.Client.GetAsync("/key/a%2Fb%2Fc%20d")).StatusCode);
    }

    [Theory]
    [InlineData(null, ReadLevel.Linearizable)]
    [InlineData("none", ReadLevel.None)]
    [InlineData("weak", ReadLevel.Weak)]
    [InlineData("linearizable", ReadLevel.Linearizable)]
    [InlineData("STRONG", ReadLevel.Strong)]
    public async Task Read_level_comes_from_the_query(string? level, ReadLevel expected)
    {
        await using var server = await RunningServer.StartAsync();
        server.Node.Data["k"] = "v";
        var response = await server.Client.GetAsync("/key/k" + (level is null ? "" : "?level=" + level));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(expected, Assert.Single(server.Node.Reads));
    }

    [Fact]
    public async Task Join_passes_id_addresses_and_suffrage()
    {
        await using var server = await RunningServer.StartAsync();
        var full = await server.Client.SendAsync(HttpMethod.Post, "/join", """{"id":"n2","addr":"h2:12000","http_addr":"h2:11000","voter":false}""");
        Assert.Equal(HttpStatusCode.OK, full.StatusCode);
        Assert.True((await full.JsonAsync()).GetProperty("ok").GetBoolean());
        // hraftd's minimal body: id defaults to the raft address, voter to true.
        var minimal = await server.Client.SendAsync(HttpMethod.Post, "/hraftd/join", """{"addr":"h3:12000"}""");
        Assert.Equal(HttpStatusCode.OK, minimal.StatusCode);

        Assert.Equal([("n2", "h2:12000", "h2:11000", false), ("h3:12000", "h3:12000", "", true)], server.Node.Joins.ToArray());
    }

    [Fact]
    public async Task Join_without_addr_is_400()
    {
        await using var server = await RunningServer.StartAsync();
        var response = await server.Client.SendAsync(HttpMethod.Post, "/join", """{"id":"n2"}""");
        Assert.Contains("addr", await response.AssertErrorAsync(HttpStatusCode.BadRequest));
        Assert.Empty(server.Node.Joins);
    }

    [Theory]
    [InlineData("")]
    [InlineData("/hraftd")]
    public async Task Status_shows_this_node_the_leader_and_the_followers(string prefix)
    {
        var node = new FakeKvNode("n1") { LastLogIndex = 7, CommitIndex = 7, AppliedIndex = 6 };
        node.Servers.Add(new ServerStatus("n1", "raft-n1", "h1", true, "Leader", 7));
        node.Servers.Add(new ServerStatus("n2", "raft-n2", "h2", true, "Follower", 5));
        node.Servers.Add(new ServerStatus("n3", "raft-n3", "h3", false, "NonVoter", null));
        await using var server = await RunningServer.StartAsync(node);

        var status = await (await server.Client.GetAsync(prefix + "/status")).JsonAsync();
        Assert.Equal("n1", status.GetProperty("id").GetString());
        Assert.Equal("Leader", status.GetProperty("state").GetString());
        Assert.Equal(3, status.GetProperty("term").GetInt32());
        Assert.False(status.GetProperty("ready").GetBoolean()); // applied 6 of 7
        Assert.Equal("n1", status.GetProperty("leader").GetProperty("id").GetString());
        Assert.Equal(server.Address, status.GetProperty("leader").GetProperty("http_address").GetString());
        var followers = status.GetProperty("followers").EnumerateArray().ToList();
        Assert.Equal(["n2", "n3"], followers.Select(f => f.GetProperty("id").GetString()));
        Assert.Equal(5, followers[0].GetProperty("match_index").GetInt32());
        Assert.False(followers[1].GetProperty("voter").GetBoolean());
        Assert.Equal(7, status.GetProperty("log").GetProperty("commit_index").GetInt32());
        Assert.Equal(1, status.GetProperty("log").GetProperty("fsm_pending").GetInt32());
        Assert.Equal(0, status.GetProperty("keys").GetInt32());
    }
}
