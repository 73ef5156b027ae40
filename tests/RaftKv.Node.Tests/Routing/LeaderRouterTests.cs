using System.Collections.Concurrent;
using RaftKv.Node.Routing;
using RaftKv.Node.Runtime;
using RaftKv.Node.Tests.Runtime;

namespace RaftKv.Node.Tests.Routing;

/// <summary>
/// The one routing decision: made up front from the loop's leader view, the request forwarded typed, a refusal after
/// leadership moved followed once, and one deadline.
/// </summary>
public sealed class LeaderRouterTests
{
    private static KeyValuePair<string, string>[] Pairs(params (string K, string V)[] p) => p.Select(x => KeyValuePair.Create(x.K, x.V)).ToArray();

    /// <summary>Records what a follower forwards, then hands it to the leader as the transport would.</summary>
    private sealed class RecordingForwarder(KvNode leader) : ILeaderForwarder
    {
        public ConcurrentQueue<(string LeaderId, ForwardedRequest Request)> Calls { get; } = new();

        public Task<byte[]> ForwardAsync(string leaderId, string? leaderHttpAddress, byte[] call, CancellationToken cancellationToken)
        {
            Calls.Enqueue((leaderId, ForwardedRequest.Decode(call)));
            return leader.AnswerForwardedAsync(call, cancellationToken);
        }
    }

    private static async Task<(KvNode Leader, KvNode Follower)> LeaderAndFollowerAsync(NodeCluster c)
    {
        await c.StartClusterAsync(3);
        var leader = await c.LeaderAsync();
        var follower = c.Nodes.Values.First(n => n != leader);
        await RunningUntil(() => ((IRoutedNode)follower).Leader.LeaderIsElsewhere, "the follower learns who leads");
        return (leader, follower);
    }

    private static async Task RunningUntil(Func<bool> condition, string what)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        while (!condition())
        {
            try
            {
                await Task.Delay(10, deadline.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail("timed out waiting until " + what);
            }
        }
    }

    [Fact]
    public async Task A_write_sent_to_a_follower_reaches_the_leader_as_the_same_typed_request()
    {
        await using var c = new NodeCluster();
        var (leader, follower) = await LeaderAndFollowerAsync(c);
        var forwarder = new RecordingForwarder(leader);
        ((IRoutedNode)follower).ForwardThrough(forwarder);

        // Keys a path-canonicalizing replay would have rewritten.
        var pairs = Pairs(("dir\\file", "1"), ("p/../q", "2"), ("m/%2e%2e/n", "3"), ("./x", "4"));
        await follower.SetAsync(pairs);

        var (to, request) = Assert.Single(forwarder.Calls);
        Assert.Equal(leader.Id, to);
        Assert.Equal(ForwardedOp.Set, request.Op);
        Assert.Equal(pairs, request.Pairs);
        Assert.True(request.Timeout > TimeSpan.Zero, "the leader is told what is left of the request's time");
        foreach (var (key, value) in pairs) Assert.Equal(value, await leader.GetAsync(key, ReadLevel.Linearizable));

        await follower.DeleteAsync("p/../q");
        Assert.Equal(("p/../q", ForwardedOp.Delete), (forwarder.Calls.Last().Request.Key, forwarder.Calls.Last().Request.Op));
        Assert.Null(await leader.GetAsync("p/../q", ReadLevel.Linearizable));
        Assert.Equal("1", await leader.GetAsync("dir\\file", ReadLevel.Linearizable));
    }

    [Fact]
    public async Task A_follower_forwards_without_queueing_anything_to_its_own_loop()
    {
        await using var c = new NodeCluster();
        var (leader, follower) = await LeaderAndFollowerAsync(c);
        // Freeze the follower's loop: a write that went through it (as the old try-here-first routing did, to be
        // refused and forwarded) would wait there until it timed out. The other two nodes still make a majority.
        using var frozen = new ManualResetEventSlim();
        var entered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        follower.Loop.Post(() =>
        {
            entered.TrySetResult();
            frozen.Wait(TimeSpan.FromSeconds(30));
        });
        await entered.Task.WaitAsync(TimeSpan.FromSeconds(10));
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var index = await follower.SetAsync(Pairs(("k", "v")), timeout.Token);
            Assert.True(index > 0);
            Assert.Equal("v", await follower.GetAsync("k", ReadLevel.Strong, timeout.Token));
            Assert.Equal("v", await leader.GetAsync("k", ReadLevel.Linearizable));
        }
        finally
        {
            frozen.Set();
        }
    }

    private static RoutedCall<ulong> Write(Func<RequestDeadline, Task<ulong>> serveHere) =>
        new(new ForwardedRequest(ForwardedOp.Set, Pairs: [KeyValuePair.Create("k", "v")]), serveHere, r => r.Index, NeedsLeader: true, "write timed out");

    /// <summary>A forwarder that answers as scripted and records where each call went.</summary>
    private sealed class ScriptedForwarder(Func<string, ForwardedResult> answer) : ILeaderForwarder
    {
        public ConcurrentQueue<string> Targets { get; } = new();

        public Task<byte[]> ForwardAsync(string leaderId, string? leaderHttpAddress, byte[] call, CancellationToken cancellationToken)
        {
            Targets.Enqueue(leaderId);
            return Task.FromResult(answer(leaderId).Encode());
        }
    }

    [Fact]
    public async Task A_refusal_after_leadership_moved_is_followed_once_to_the_leader_it_names()
    {
        // The view still says this node leads; the loop knows better and names n2.
        var router = new LeaderRouter(() => new LeaderView(IsSelf: true, "self", "self:1", IsMember: true), TimeSpan.FromSeconds(5), TimeProvider.System);
        var forwarder = new ScriptedForwarder(_ => new ForwardedResult(42, null, null));
        router.Forwarder = forwarder;
        var servedHere = 0;
        var index = await router.RouteAsync(Write(_ =>
        {
            servedHere++;
            throw new NodeException(NodeErrorKind.NotLeader, "not the leader; the leader is n2", "n2", "n2:1");
        }), mayForward: true, CancellationToken.None);
        Assert.Equal(42UL, index);
        Assert.Equal(1, servedHere);
        Assert.Equal(["n2"], forwarder.Targets);
    }

    [Fact]
    public async Task Two_nodes_naming_each_other_end_in_no_leader_at_the_deadline_not_a_loop()
    {
        var router = new LeaderRouter(() => new LeaderView(IsSelf: false, "b", "b:1", IsMember: true), TimeSpan.FromMilliseconds(300), TimeProvider.System);
        // b says a leads, and so on: stale pointers on both sides.
        var forwarder = new ScriptedForwarder(_ => new ForwardedResult(0, null, new NodeException(NodeErrorKind.NotLeader, "not the leader; the leader is a", "a", "a:1")));
        router.Forwarder = forwarder;
        var e = await Assert.ThrowsAsync<NodeException>(() => router.RouteAsync(Write(_ => throw new InvalidOperationException("not served here")),
            mayForward: true, CancellationToken.None));
        Assert.Equal(NodeErrorKind.NoLeader, e.Kind);
        // Each round: to b (from the view), then once to a (the refusal's leader); later rounds wait between tries.
        Assert.Equal("b", forwarder.Targets.First());
        Assert.Equal("a", forwarder.Targets.Skip(1).First());
        Assert.True(forwarder.Targets.Count < 40, $"{forwarder.Targets.Count} forwards in 300 ms: the router does not pause between tries");
    }

    [Fact]
    public async Task The_deadline_is_enforced_once_and_a_write_that_hangs_times_out_typed()
    {
        var router = new LeaderRouter(() => new LeaderView(IsSelf: true, "self", null, IsMember: true), TimeSpan.FromMilliseconds(200), TimeProvider.System);
        router.Forwarder = new ScriptedForwarder(_ => throw new InvalidOperationException("nothing to forward"));
        CancellationToken seen = default;
        var e = await Assert.ThrowsAsync<NodeException>(() => router.RouteAsync(Write(d =>
        {
            seen = d.Token;
            return new TaskCompletionSource<ulong>().Task.WaitAsync(d.Token);
        }), mayForward: true, CancellationToken.None));
        Assert.Equal(NodeErrorKind.Timeout, e.Kind);
        Assert.Equal("write timed out", e.Message);
        Assert.True(seen.IsCancellationRequested, "what the request waited for was cancelled by the same deadline");
    }

    [Fact]
    public async Task Redirect_mode_refuses_naming_the_leader_without_serving_or_forwarding()
    {
        var router = new LeaderRouter(() => new LeaderView(IsSelf: false, "n2", "n2:1", IsMember: true), TimeSpan.FromSeconds(5), TimeProvider.System);
        var forwarder = new ScriptedForwarder(_ => new ForwardedResult(1, null, null));
        router.Forwarder = forwarder;
        var e = await Assert.ThrowsAsync<NodeException>(() => router.RouteAsync(Write(_ => throw new InvalidOperationException("not served here")),
            mayForward: false, CancellationToken.None));
        Assert.Equal((NodeErrorKind.NotLeader, "n2", "n2:1"), (e.Kind, e.LeaderId, e.LeaderHttpAddress));
        Assert.Empty(forwarder.Targets);
    }
}
