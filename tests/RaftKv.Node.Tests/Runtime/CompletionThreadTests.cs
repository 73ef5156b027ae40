namespace RaftKv.Node.Tests.Runtime;

/// <summary>
/// Which thread runs the code after a node call: the raft loop's only when the options ask for inline completions,
/// and a node disposed from the loop thread still stops and releases its data directory.
/// </summary>
public sealed class CompletionThreadTests
{
    private static readonly KeyValuePair<string, string>[] OnePair = [KeyValuePair.Create("k", "v")];

    private static bool OnLoopThread => Thread.CurrentThread.Name?.StartsWith("raft-loop", StringComparison.Ordinal) == true;

    // Each test runs on the pool, away from xunit's synchronization context, so that an await resumes wherever the
    // awaited task completed, as it would in an embedding program.

    [Fact]
    public Task ByDefault_CodeAfterAWriteOrReadRunsOffTheLoopThread() => Task.Run(async () =>
    {
        await using var c = new NodeCluster();
        var n = await c.StartAsync("n1", bootstrap: true);
        await c.WaitForLeaderAsync();
        for (var i = 0; i < 20; i++)
        {
            await n.SetAsync(OnePair);
            Assert.False(OnLoopThread, "a write's continuation ran on the raft loop");
            await n.GetAsync("k", ReadLevel.Linearizable);
            Assert.False(OnLoopThread, "a read's continuation ran on the raft loop");
        }
    });

    [Fact]
    public Task InlineCompletions_RunOnTheLoopAndDisposingFromThereStillReleasesTheDataDirectory() => Task.Run(async () =>
    {
        await using var c = new NodeCluster { Configure = o => o with { InlineCompletions = true } };
        var n = await c.StartAsync("n1", bootstrap: true);
        await c.WaitForLeaderAsync();
        var onLoop = 0;
        for (var i = 0; i < 20; i++)
        {
            await n.SetAsync(OnePair);
            if (OnLoopThread) onLoop++;
        }
        // Writes are pending when awaited (they wait for the loop), so their completions run inline.
        Assert.True(onLoop > 0, "no write completed on the loop thread");

        // Here on the loop thread, as an embedding program would be after awaiting a write.
        await n.SetAsync([KeyValuePair.Create("last", "write")]);
        Assert.True(OnLoopThread, "the last write did not complete inline");
        await c.StopAsync("n1");

        // The lock on the data directory is free again: the node starts on it and has the data.
        var back = await c.StartAsync("n1");
        await c.WaitForLeaderAsync();
        Assert.Equal("write", await back.GetAsync("last", ReadLevel.Linearizable));
    });
}
