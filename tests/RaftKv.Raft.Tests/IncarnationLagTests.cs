using RaftKv.Raft.Tests.Harness;

namespace RaftKv.Raft.Tests;

/// <summary>
/// What the wipe schedules of the simulator found (seeds 33, 87, 112 of ReplayWipeSeed): a node whose log is behind
/// still names a member's previous incarnation, and must still follow that member's new incarnation once the cluster
/// replaced and promoted it. It failed while the core dropped every message from an incarnation its configuration did
/// not name; only answers (votes, append and heartbeat acknowledgements) are checked now.
/// </summary>
public sealed class IncarnationLagTests
{
    private const ulong Wiped = 99;

    /// <summary>
    /// n5 is cut off while n2 is wiped, replaced as a non-voter, caught up and promoted, and then leads. When n5 is
    /// back its configuration still names n2's previous incarnation; it must still catch up from n2.
    /// </summary>
    [Fact]
    public void LaggingFollower_CatchesUpFromALeaderThatWasWiped()
    {
        var c = new TestCluster(5, withIncarnations: true);
        c.Elect("n1");
        Assert.True(c.Propose("n1", "before").Accepted);
        c.Settle();
        c.Isolate("n5");
        c.Wipe("n2", Wiped);
        Assert.True(c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddNonVoter, "n2", "addr-n2", Wiped)).Accepted);
        c.Tick(5);
        Assert.True(c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddVoter, "n2", "addr-n2", Wiped)).Accepted);
        c.Tick(5);
        Assert.True(c["n1"].TransferLeadership("n2").Accepted);
        c.Tick(10);
        Assert.Equal(Role.Leader, c["n2"].Role);
        Assert.True(c.Propose("n2", "after").Accepted);
        c.Settle();

        c.Heal();
        c.Tick(20);
        Assert.Equal(c["n2"].LastIndex, c["n5"].LastIndex);
        Assert.Contains("after", c.AppliedData("n5"));
    }
}
