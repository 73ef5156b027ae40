using RaftKv.Raft;

namespace RaftKv.Node.Tests.Runtime;

/// <summary>
/// While the raft loop is stalled on a slow disk, requests must not pile up without limit, a request whose caller has
/// given up must not be proposed later, and a follower must not keep the ids of reads that timed out.
/// </summary>
public sealed class BoundedQueueTests
{
    /// <summary>A node whose WAL flush hangs once <see cref="Hang"/> is set, until <see cref="Release"/>.</summary>
    private sealed class StalledDisk : IDisposable
    {
        private readonly ManualResetEventSlim _gate = new(false);
        private readonly ManualResetEventSlim _entered = new(false);
        private volatile bool _hang;

        public void Flush(RaftKv.Storage.BackgroundSync sync)
        {
            if (_hang)
            {
                _entered.Set();
                _gate.Wait(TimeSpan.FromSeconds(60));
            }
            sync.Flush();
        }

        /// <summary>Waits until a flush hangs: the write that asked for it was proposed, and the ones after it wait in the queue.</summary>
        public async Task HungAsync() =>
            Assert.True(await Task.Run(() => _entered.Wait(TimeSpan.FromSeconds(15))), "no flush hung");

        public void Hang() => _hang = true;

        public void Release()
        {
            _hang = false;
            _gate.Set();
        }

        public void Dispose()
        {
            Release();
            _gate.Dispose();
            _entered.Dispose();
        }
    }

    private static KeyValuePair<string, string>[] Pair(string k, string v) => [KeyValuePair.Create(k, v)];

    [Fact]
    public async Task Beyond_the_bound_requests_are_refused_as_busy_at_once_and_the_queued_ones_complete_later()
    {
        using var disk = new StalledDisk();
        await using var c = new NodeCluster
        {
            Configure = o => o with { MaxQueuedRequests = 5, RequestTimeout = TimeSpan.FromSeconds(60), WalFlushForTests = disk.Flush },
        };
        var n = await c.StartAsync("n1", bootstrap: true);
        await c.WaitForLeaderAsync();
        await n.SetAsync(Pair("warm", "up"));

        disk.Hang();
        // The first write is proposed and waits for the flush; the next ones wait in the queue behind it.
        var stuck = n.SetAsync(Pair("first", "1"));
        await disk.HungAsync();
        var queued = Enumerable.Range(0, 5).Select(i => n.SetAsync(Pair("q" + i, "v"))).ToList();
        await NodeCluster.Eventually(() => Task.FromResult(n.Loop.QueuedRequests == 5), "five requests to wait in the queue");

        var write = await Assert.ThrowsAsync<NodeException>(() => n.SetAsync(Pair("over", "bound")));
        Assert.Equal(NodeErrorKind.Busy, write.Kind);
        Assert.Contains("too many requests are waiting", write.Message);
        var read = await Assert.ThrowsAsync<NodeException>(() => n.GetAsync("warm", ReadLevel.Linearizable));
        Assert.Equal(NodeErrorKind.Busy, read.Kind);
        var status = await Assert.ThrowsAsync<NodeException>(() => n.GetStatusAsync());
        Assert.Equal(NodeErrorKind.Busy, status.Kind);

        disk.Release();
        await stuck.WaitAsync(TimeSpan.FromSeconds(30));
        await Task.WhenAll(queued).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(0, n.Loop.QueuedRequests);
        await n.SetAsync(Pair("after", "release"));
    }

    [Fact]
    public async Task A_write_whose_caller_timed_out_or_cancelled_before_it_was_proposed_is_never_applied()
    {
        using var disk = new StalledDisk();
        await using var c = new NodeCluster
        {
            Configure = o => o with { RequestTimeout = TimeSpan.FromSeconds(1), WalFlushForTests = disk.Flush },
        };
        var n = await c.StartAsync("n1", bootstrap: true);
        await c.WaitForLeaderAsync();
        await n.SetAsync(Pair("warm", "up"));

        disk.Hang();
        var stuck = n.SetAsync(Pair("first", "1"));
        await disk.HungAsync();
        // Queued behind the hung flush until their callers give up: one by timeout, one by cancelling (a client gone).
        var timedOut = await Assert.ThrowsAsync<NodeException>(() => n.SetAsync(Pair("late", "timed out")));
        Assert.Equal(NodeErrorKind.Timeout, timedOut.Kind);
        using var cancel = new CancellationTokenSource();
        var cancelled = n.SetAsync(Pair("gone", "cancelled"), cancel.Token);
        await cancel.CancelAsync();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        await Record.ExceptionAsync(() => stuck);

        disk.Release();
        await NodeCluster.Eventually(async () =>
        {
            try
            {
                await n.SetAsync(Pair("after", "release"));
                return true;
            }
            catch (NodeException e) when (e.Kind is NodeErrorKind.Timeout or NodeErrorKind.NotLeader or NodeErrorKind.NoLeader)
            {
                return false;
            }
        }, "a write after the disk recovers", TimeSpan.FromSeconds(30));

        // Everything before the last write is applied now: the abandoned writes were not among it.
        Assert.Equal("release", await n.GetAsync("after", ReadLevel.Linearizable));
        Assert.Null(await n.GetAsync("late", ReadLevel.None));
        Assert.Null(await n.GetAsync("gone", ReadLevel.None));
    }

    [Fact]
    public async Task A_follower_forgets_the_ids_of_reads_that_timed_out()
    {
        await using var c = new NodeCluster { Configure = o => o with { RequestTimeout = TimeSpan.FromSeconds(1), ForwardToLeader = false } };
        await c.StartClusterAsync(3);
        var leaderId = await c.WaitForLeaderAsync();
        var (followerId, follower) = c.Nodes.First(kv => kv.Key != leaderId);
        await c.SetOnLeaderAsync(KeyValuePair.Create("k", "v"));
        await NodeCluster.Eventually(async () => await follower.GetAsync("k", ReadLevel.Linearizable) == "v", "a read on the follower");

        // The leader's answers to this follower's reads are lost; heartbeats still arrive, so the term stays.
        c.Network.Drop = m => m.Type == MessageType.ReadIndexResponse && m.To == followerId;
        for (var i = 0; i < 5; i++)
        {
            var e = await Assert.ThrowsAsync<NodeException>(() => follower.GetAsync("k", ReadLevel.Linearizable));
            Assert.Equal(NodeErrorKind.Timeout, e.Kind);
        }
        await NodeCluster.Eventually(async () => await follower.Loop.ForwardedReadCountAsync() == 0, "the timed-out read ids to be released");

        c.Network.Drop = null;
        Assert.Equal("v", await follower.GetAsync("k", ReadLevel.Linearizable));
    }
}
