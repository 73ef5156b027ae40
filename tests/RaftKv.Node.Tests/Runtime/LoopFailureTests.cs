namespace RaftKv.Node.Tests.Runtime;

/// <summary><see cref="KvNode.Failed"/>: completes with the reason when the raft loop dies, and never on a normal stop.</summary>
public sealed class LoopFailureTests
{
    [Fact]
    public async Task A_failed_WAL_flush_completes_Failed_with_the_reason_and_fails_what_waits()
    {
        var failDisk = false;
        await using var c = new NodeCluster
        {
            Configure = o => o with
            {
                WalFlushForTests = sync =>
                {
                    if (Volatile.Read(ref failDisk)) throw new IOException("No space left on device (simulated)");
                    sync.Flush();
                },
            },
        };
        var n = await c.StartAsync("n1", bootstrap: true);
        await c.WaitForLeaderAsync();
        await n.SetAsync([KeyValuePair.Create("a", "1")]);
        Assert.False(n.Failed.IsCompleted);

        Volatile.Write(ref failDisk, true);
        var write = await Record.ExceptionAsync(() => n.SetAsync([KeyValuePair.Create("b", "2")]));
        Assert.IsType<NodeException>(write);

        var reason = await n.Failed.WaitAsync(TimeSpan.FromSeconds(10));
        Assert.Contains("raft loop failed", reason);
        Assert.Contains("No space left on device (simulated)", reason);
        Assert.DoesNotContain('\n', reason);
        var after = await Assert.ThrowsAsync<NodeException>(() => n.SetAsync([KeyValuePair.Create("c", "3")]));
        Assert.Equal(NodeErrorKind.Unavailable, after.Kind);
    }

    [Fact]
    public async Task A_normal_stop_does_not_complete_Failed()
    {
        await using var c = new NodeCluster();
        var n = await c.StartAsync("n1", bootstrap: true);
        await c.WaitForLeaderAsync();
        var failed = n.Failed;
        await c.StopAsync("n1");
        Assert.False(failed.IsCompleted);
    }
}
