using RaftKv.Raft;

namespace RaftKv.Node.Tests.Runtime;

/// <summary>
/// A leader whose WAL flush hangs (a stuck or failing disk) must give up its place: its loop waits for the flush once
/// it has taken an election timeout, heartbeats stop, and the followers elect a leader whose disk works.
/// </summary>
public sealed class HungDiskTests
{
    [Fact]
    public async Task LeaderWithAHungFlush_IsReplacedAndTheClusterWritesOn()
    {
        using var gate = new ManualResetEventSlim(false);
        string? hungNode = null;
        await using var c = new NodeCluster
        {
            Configure = o => o with
            {
                // Longer than the whole scenario: the write made during the hang must end because the disk answers,
                // not because it times out.
                RequestTimeout = TimeSpan.FromSeconds(60),
                WalFlushForTests = sync =>
                {
                    // Only the chosen node's disk hangs, and only until the test lets it go.
                    if (Volatile.Read(ref hungNode) == o.Id) gate.Wait(TimeSpan.FromSeconds(60));
                    sync.Flush();
                },
            },
        };
        try
        {
            await c.StartClusterAsync(3);
            var old = await c.LeaderAsync();
            var oldId = c.Nodes.Single(kv => kv.Value == old).Key;
            Volatile.Write(ref hungNode, oldId);

            // The write needs a flush on the leader, which hangs. (It may still commit: the two followers are a quorum.)
            var stuckWrite = old.SetAsync([KeyValuePair.Create("during", "hang")]);

            var others = c.Nodes.Where(kv => kv.Key != oldId).ToList();
            string? newLeader = null;
            await NodeCluster.Eventually(async () =>
            {
                foreach (var (id, node) in others)
                {
                    if ((await node.GetStatusAsync()).Role == Role.Leader) newLeader = id;
                }
                return newLeader is not null;
            }, "a follower to take over from the leader whose disk hangs", TimeSpan.FromSeconds(15));

            // The new leader and the remaining follower are a quorum: writes go on while the old leader's disk hangs.
            var index = await c.Nodes[newLeader!].SetAsync([KeyValuePair.Create("after", "takeover")]);
            Assert.True(index > 0);

            // The disk recovers: the old leader finds the newer term, follows, and catches up.
            gate.Set();
            await NodeCluster.Eventually(async () => await old.GetAsync("after", ReadLevel.None) == "takeover", "the old leader catches up");
            Assert.NotEqual(Role.Leader, (await old.GetStatusAsync()).Role);
            // The write made during the hang ends once the disk answers: applied (the followers had a quorum), or refused
            // because leadership changed. Not a timeout, and not left hanging.
            var outcome = await Record.ExceptionAsync(() => stuckWrite.WaitAsync(TimeSpan.FromSeconds(15)));
            Assert.True(outcome is null or NodeException { Kind: not NodeErrorKind.Timeout }, $"the write during the hang ended with {outcome}");
        }
        finally
        {
            gate.Set();
        }
    }
}
