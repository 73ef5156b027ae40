using System.Diagnostics;

namespace RaftKv.Client.Tests;

/// <summary>RaftKvClient's calls, errors and leader discovery against a live three-node cluster.</summary>
[Collection(SharedClusterCollection.Name)]
public sealed class ClientTests(SharedCluster shared)
{
    private readonly TestCluster _cluster = shared.Cluster;

    private RaftKvClient Client(params string[] endpoints) =>
        new(new RaftKvClientOptions { Endpoints = endpoints.Length > 0 ? endpoints : _cluster.Endpoints, Timeout = TimeSpan.FromSeconds(10) });

    [Theory]
    [InlineData(ReadLevel.None)]
    [InlineData(ReadLevel.Weak)]
    [InlineData(ReadLevel.Linearizable)]
    [InlineData(ReadLevel.Strong)]
    public async Task Set_get_delete_at_every_read_level(ReadLevel level)
    {
        using var client = Client();
        var key = "level-" + level;
        var index = await client.SetAsync(key, "v1");
        Assert.True(index > 0);

        // Level none reads one node's state, which may lag: wait for it, the others must see the write at once.
        if (level == ReadLevel.None)
        {
            await TestCluster.Eventually(async () => await client.GetAsync(key, level) == "v1", "the write to reach the node");
        }
        Assert.Equal("v1", await client.GetAsync(key, level));

        var deleted = await client.DeleteAsync(key);
        Assert.True(deleted > index);
        if (level == ReadLevel.None)
        {
            await TestCluster.Eventually(async () => await client.GetAsync(key, level) is null, "the delete to reach the node");
        }
        Assert.Null(await client.GetAsync(key, level));
    }

    [Fact]
    public async Task SetMany_writes_all_pairs_in_one_entry_and_odd_keys_survive_the_url()
    {
        using var client = Client();
        string[] keys = ["a/b", "sp ace", "per%2Fcent", "q?x=1&y", "ünï"];
        var index = await client.SetManyAsync(keys.Select(k => new KeyValuePair<string, string>(k, "val:" + k)));
        Assert.True(index > 0);
        foreach (var k in keys)
        {
            Assert.Equal("val:" + k, await client.GetAsync(k));
        }
    }

    [Fact]
    public async Task Missing_key_reads_as_null_and_deleting_it_succeeds()
    {
        using var client = Client();
        Assert.Null(await client.GetAsync("never-written-" + Guid.NewGuid()));
        await client.DeleteAsync("never-written-either");
    }

    [Fact]
    public async Task Bad_requests_and_unknown_nodes_throw_typed_exceptions_without_retrying()
    {
        using var client = Client();
        var bad = await Assert.ThrowsAsync<RaftKvBadRequestException>(() => client.SetManyAsync([]));
        Assert.Equal(400, bad.StatusCode);
        Assert.Contains("at least one key", bad.ServerMessage);

        var tooLong = await Assert.ThrowsAsync<RaftKvBadRequestException>(() => client.SetAsync(new string('k', 100_000), "v"));
        Assert.Contains(tooLong.StatusCode, new int?[] { 400, 413 });

        var missing = await Assert.ThrowsAsync<RaftKvNotFoundException>(() => client.RemoveAsync("no-such-node"));
        Assert.Equal(404, missing.StatusCode);
        Assert.False(string.IsNullOrEmpty(missing.ServerMessage));
    }

    [Fact]
    public async Task Starting_from_a_follower_the_client_learns_the_leader_and_writes_there()
    {
        var leader = await _cluster.LeaderAsync();
        var follower = _cluster.Nodes.Values.First(n => n != leader);
        using var client = Client(follower.HttpAddress);
        Assert.Null(client.Leader);

        await client.SetAsync("discovered", "yes");
        Assert.Equal(leader.HttpAddress, client.Leader);
        Assert.Contains(leader.HttpAddress, client.KnownEndpoints);
        Assert.Equal("yes", await client.GetAsync("discovered"));
    }

    [Fact]
    public async Task With_redirects_preferred_the_client_follows_307_to_the_leader()
    {
        var leader = await _cluster.LeaderAsync();
        var follower = _cluster.Nodes.Values.First(n => n != leader);
        using var client = new RaftKvClient(new RaftKvClientOptions { Endpoints = [follower.HttpAddress], PreferRedirects = true });
        await client.SetAsync("redirected", "1");
        Assert.Equal(leader.HttpAddress, client.Leader);
        Assert.Equal("1", await client.GetAsync("redirected", ReadLevel.Weak));
    }

    [Fact]
    public async Task Status_teaches_the_leader_and_cluster_status_asks_every_member()
    {
        var leader = await _cluster.LeaderAsync();
        using var client = Client(_cluster.Nodes.Values.First(n => n != leader).HttpAddress);
        var status = await client.GetStatusAsync();
        Assert.Equal(leader.Name, status.Leader?.Id);
        Assert.Equal(leader.HttpAddress, client.Leader);
        Assert.Equal(3, client.KnownEndpoints.Count);

        var members = await client.GetClusterStatusAsync();
        Assert.Equal(3, members.Count);
        Assert.Equal(leader.Name, members[0].Id);
        Assert.All(members, m => Assert.NotNull(m.Status));
        Assert.Single(members, m => m.Status!.IsLeader);
    }

    [Fact]
    public async Task A_dead_endpoint_is_skipped_after_connection_refused()
    {
        var dead = "127.0.0.1:" + FreePorts.Pick();
        using var client = Client([dead, .. _cluster.Endpoints]);
        await client.SetAsync("failover", "ok");
        Assert.Equal("ok", await client.GetAsync("failover"));
    }

    [Fact]
    public async Task An_unreachable_cluster_fails_a_write_as_not_applied_within_the_per_call_timeout()
    {
        using var client = Client("127.0.0.1:" + FreePorts.Pick());
        var clock = Stopwatch.StartNew();
        // Connection refused means the write never left: safe, so it is retried until the (overridden) timeout, and
        // reported as unavailable, not as indeterminate.
        var e = await Assert.ThrowsAsync<RaftKvUnavailableException>(() => client.SetAsync("k", "v", timeout: TimeSpan.FromMilliseconds(700)));
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(5), $"took {clock.Elapsed}");
        Assert.Contains("connection refused", e.Message);
        Assert.Null(e.StatusCode);
    }

    [Fact]
    public async Task Transfer_leadership_moves_the_leader_and_snapshot_reports_its_index()
    {
        var leader = await _cluster.LeaderAsync();
        var target = _cluster.Nodes.Values.First(n => n != leader);
        using var client = Client();
        await client.SetAsync("before-transfer", "x");
        await client.TransferLeadershipAsync(target.Name);
        Assert.Equal(target, await _cluster.LeaderAsync());

        // The client finds the new leader on its own.
        await client.SetAsync("after-transfer", "y");
        Assert.Equal(target.HttpAddress, client.Leader);

        var index = await client.SnapshotAsync(target.HttpAddress);
        Assert.True(index > 0);
    }

    [Fact]
    public async Task A_cancelled_token_cancels_the_call()
    {
        using var client = Client();
        using var cts = new CancellationTokenSource();
        await cts.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => client.GetAsync("k", cancellationToken: cts.Token));
    }
}
