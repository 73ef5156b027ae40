namespace RaftKv.Node.Tests.Runtime;

/// <summary>
/// While a leader's entries flush, proposals are held for the next batch and do not wake the loop. Each one must still
/// be taken as soon as the hold lifts, not at the loop's next tick.
/// </summary>
public sealed class HeldProposalTests
{
    [Fact]
    public async Task Proposals_AreTakenAtOnce_WhetherOrNotAFlushHeldThem()
    {
        await using var c = new NodeCluster
        {
            Configure = o => NodeCluster.SlowTicks(o) with
            {
                // Frequent snapshots: finishing one drains the flushes in flight.
                SnapshotThreshold = 25,
                TrailingLogs = 10,
                // A slow disk, so that most proposals from concurrent writers arrive while a flush is in flight.
                WalFlushForTests = sync =>
                {
                    Thread.Sleep(2);
                    sync.Flush();
                },
            },
        };
        var n = await c.StartAsync("n1", bootstrap: true);
        await c.WaitForLeaderAsync();

        // One writer: each proposal comes after the previous flush is done, with nothing else to wake the loop, so the
        // proposal itself must. A hold left on would make each write wait for the next tick, half a second on average:
        // about half of them would take longer than that. (A busy machine may stall one or two.)
        var slow = await NodeCluster.SlowRequestsAsync(20, i => n.SetAsync([KeyValuePair.Create("solo", i.ToString())]));
        Assert.True(slow.Count < 3, "proposals waited for a tick: " + string.Join(", ", slow));

        // Many writers: most proposals are held behind a flush and taken when it completes; every write must finish,
        // soon (each of the 60 writes in a row waiting for a 1 s tick would take a minute), with its value applied,
        // through snapshots taken meanwhile.
        var writers = Enumerable.Range(0, 8).Select(w => Task.Run(async () =>
        {
            for (var i = 0; i < 60; i++) await n.SetAsync([KeyValuePair.Create($"w{w}", i.ToString())]);
        }));
        await Task.WhenAll(writers).WaitAsync(TimeSpan.FromSeconds(20));
        Assert.Equal("19", await n.GetAsync("solo", ReadLevel.Linearizable));
        for (var w = 0; w < 8; w++) Assert.Equal("59", await n.GetAsync($"w{w}", ReadLevel.Linearizable));
        Assert.True((await n.GetStatusAsync()).LastSnapshotIndex > 0, "snapshots were taken meanwhile");
    }
}
