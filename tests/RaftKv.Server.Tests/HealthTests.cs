using System.Net;
using RaftKv.Raft;

namespace RaftKv.Server.Tests;

/// <summary>/livez and /readyz.</summary>
public sealed class HealthTests
{
    [Fact]
    public async Task Livez_is_200_whatever_the_node_says()
    {
        var node = new FakeKvNode { Fail = _ => new InvalidOperationException("node is wedged") };
        await using var server = await RunningServer.StartAsync(node);
        Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync("/livez")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync("/hraftd/livez")).StatusCode);
    }

    [Fact]
    public async Task Livez_is_503_once_the_node_has_failed()
    {
        var node = new FakeKvNode();
        await using var server = await RunningServer.StartAsync(node);
        Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync("/livez")).StatusCode);

        node.Failure.SetResult("the raft loop failed: IOException: No space left on device");
        var failed = await server.Client.GetAsync("/livez");
        Assert.Contains("No space left on device", await failed.AssertErrorAsync(HttpStatusCode.ServiceUnavailable));
        Assert.NotNull(failed.Headers.RetryAfter);
    }

    [Fact]
    public async Task Readyz_is_200_only_when_ready()
    {
        var node = new FakeKvNode { Role = Role.Follower, CommitIndex = 5, AppliedIndex = 5 };
        await using var server = await RunningServer.StartAsync(node);

        var noLeader = await server.Client.GetAsync("/readyz");
        Assert.Contains("no leader", await noLeader.AssertErrorAsync(HttpStatusCode.ServiceUnavailable));
        Assert.NotNull(noLeader.Headers.RetryAfter);

        node.LeaderId = "n1";
        node.AppliedIndex = 4;
        var behind = await server.Client.GetAsync("/readyz");
        Assert.Contains("applied 4 of 5", await behind.AssertErrorAsync(HttpStatusCode.ServiceUnavailable));

        // Applied all it knows committed, but not what the leader had committed when this node started: a follower
        // restarted (or re-added) after losing its data knows little of the log at first.
        node.AppliedIndex = 5;
        node.CatchUpTarget = 2_900_000;
        var restarted = await server.Client.GetAsync("/readyz");
        Assert.Contains("applied 5 of 2900000", await restarted.AssertErrorAsync(HttpStatusCode.ServiceUnavailable));

        node.CatchUpTarget = 5;
        var ready = await server.Client.GetAsync("/readyz");
        Assert.Equal(HttpStatusCode.OK, ready.StatusCode);
        Assert.True((await ready.JsonAsync()).GetProperty("ready").GetBoolean());

        node.Membership = RaftKv.Node.Membership.Removed;
        var removed = await server.Client.GetAsync("/readyz");
        Assert.Contains("was removed from the cluster", await removed.AssertErrorAsync(HttpStatusCode.ServiceUnavailable));
    }
}
