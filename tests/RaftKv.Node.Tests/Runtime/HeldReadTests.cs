namespace RaftKv.Node.Tests.Runtime;

/// <summary>
/// While a leader's heartbeat round is being answered, a new linearizable read does not wake the loop (it could only
/// wait for the next round); the answers do, and the reads are taken then. None may wait for a tick instead.
/// </summary>
public sealed class HeldReadTests
{
    [Fact]
    public async Task LinearizableReads_AreTakenAtOnce_WhetherOrNotARoundHeldThem()
    {
        await using var c = new NodeCluster { Configure = NodeCluster.SlowTicks };
        await c.StartClusterAsync(3);
        var leader = await c.LeaderAsync();
        await leader.SetAsync([KeyValuePair.Create("k", "v")]);

        // One reader: each read comes after the last round was answered, with nothing else to wake the loop, so the
        // read itself must. A hold left on would make each read wait for the next tick, half a second on average:
        // about half of them would take longer than that. (A busy machine may stall one or two.)
        var slow = await NodeCluster.SlowRequestsAsync(20, async _ => Assert.Equal("v", await leader.GetAsync("k", ReadLevel.Linearizable)));
        Assert.True(slow.Count < 3, "reads waited for a tick: " + string.Join(", ", slow));

        // Many readers: most reads arrive while a round is answered and are taken together when it is; all finish, and
        // soon (each of the 50 reads in a row waiting for a 1 s tick would take most of a minute).
        var readers = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            for (var i = 0; i < 50; i++) Assert.Equal("v", await leader.GetAsync("k", ReadLevel.Linearizable));
        }));
        await Task.WhenAll(readers).WaitAsync(TimeSpan.FromSeconds(20));
    }
}
