using RaftKv.Raft.Tests.Harness;

namespace RaftKv.Raft.Tests;

/// <summary>
/// A server that lost its storage comes back as another incarnation under the same id (raftkvd draws one whenever its
/// WAL is created). Raft assumes a voter never forgets what it acknowledged; these tests pin what keeps that true.
/// </summary>
public sealed class IncarnationTests
{
    private const ulong Wiped = 99;

    /// <summary>
    /// n1 leads and commits "x" with n2's acknowledgement while n3 is cut off. n2 is wiped, n1 goes down. n3 lacks "x"
    /// and must not win: the wiped n2 has an empty log and would grant its vote, electing a leader without a committed
    /// entry, unless votes from another incarnation than the configuration's are ignored.
    /// </summary>
    [Fact]
    public void WipedVoter_IsNotCountedAsTheVoterItWas()
    {
        var c = new TestCluster(3, withIncarnations: true);
        c.Elect("n1");
        c.Isolate("n3");
        Assert.True(c.Propose("n1", "x").Accepted);
        c.Settle();
        Assert.Contains("x", c.AppliedData("n1"));

        c.Crash("n1");
        c.Wipe("n2", Wiped);
        c.Heal();
        c.Cut.Add(("n1", "n2"));
        c.Cut.Add(("n1", "n3"));
        for (var i = 0; i < 50; i++)
        {
            c.Tick();
            Assert.NotEqual(Role.Leader, c["n3"].Role);
            Assert.NotEqual(Role.Leader, c["n2"].Role);
        }
        Assert.True(c["n3"].StaleIncarnationDrops > 0);

        // n1 comes back: the cluster leads again, with "x".
        c.Restart("n1");
        c.Heal();
        c.Tick(40);
        var leader = c.Nodes.Keys.Single(id => c[id].Role == Role.Leader);
        Assert.NotEqual("n2", leader);
        Assert.True(c.Propose(leader, "y").Accepted);
        c.Settle();
        Assert.Equal(["x", "y"], c.AppliedData("n3").Where(d => d is "x" or "y"));
    }

    [Fact]
    public void WipedServer_DoesNotCampaignAsItsPreviousSelf()
    {
        var c = new TestCluster(3, withIncarnations: true);
        c.Elect("n1");
        // n2 lost its data and came back with a log naming its previous incarnation as a voter (what the leader's
        // log or snapshot says until the replacement reaches it): it must not campaign as that voter.
        c.Wipe("n2", Wiped, startFrom: c["n1"].Config);
        Assert.True(c["n2"].Config.IsVoter("n2"));
        c.Isolate("n2");
        c.Tick(50);
        Assert.Equal(Role.Follower, c["n2"].Role);
        Assert.DoesNotContain(c.Sent, m => m.From == "n2" && m.Type is MessageType.PreVote or MessageType.Vote);
    }

    [Fact]
    public void WipedVoter_IsReplacedAsANonVoter_CaughtUp_ThenPromoted()
    {
        var c = new TestCluster(3, withIncarnations: true);
        c.Elect("n1");
        for (var i = 0; i < 5; i++) Assert.True(c.Propose("n1", "w" + i).Accepted);
        c.Settle();
        c.Wipe("n2", Wiped);
        c.Settle();

        // A voter is never swapped for another voter in one step (the old and new majorities need not overlap).
        var swap = c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddVoter, "n2", "addr-n2", Wiped));
        Assert.Equal(Refusal.InvalidConfigChange, swap.Refusal);

        Assert.True(c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddNonVoter, "n2", "addr-n2", Wiped)).Accepted);
        c.Tick(5);
        Assert.Equal(new Member("n2", "addr-n2", false, Wiped), c["n1"].Config.Find("n2"));
        // The leader forgot what it knew of the old n2's log and caught the new one up from the start.
        Assert.Equal(c["n1"].LastIndex, c["n1"].ReplicationStatus["n2"].Match);
        Assert.Equal(Wiped, c["n1"].ObservedIncarnation("n2"));
        Assert.Equal(["w0", "w1", "w2", "w3", "w4"], c.AppliedData("n2"));

        Assert.True(c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddVoter, "n2", "addr-n2", Wiped)).Accepted);
        c.Settle();
        Assert.True(c["n2"].Config.IsVoter("n2"));
        c.Isolate("n1");
        c.Tick(50);
        // n2 (new) and n3 elect a leader between them: the replaced member counts again.
        Assert.Contains(c.Nodes.Keys, id => id != "n1" && c[id].Role == Role.Leader);
    }

    [Fact]
    public void Configuration_RecordsIdentities_AndReadsTheFormatWithout()
    {
        var config = new ClusterConfig([new Member("a", "x:1", true, 7), new Member("b", "y:2", false, 0)], "c0ffee");
        var decoded = ClusterConfig.Decode(config.Encode());
        Assert.Equal(config, decoded);
        Assert.Equal("c0ffee", decoded.ClusterId);
        Assert.Equal(7UL, decoded.Find("a")!.Incarnation);
        Assert.NotEqual(config, new ClusterConfig(config.Members, "other"));

        // Written by versions before identities: i32 count | (u8 voter | i32 len | id | i32 len | address)*.
        byte[] legacy = [1, 0, 0, 0, 1, 1, 0, 0, 0, (byte)'a', 3, 0, 0, 0, (byte)'x', (byte)':', (byte)'1'];
        var old = ClusterConfig.Decode(legacy);
        Assert.Equal("", old.ClusterId);
        Assert.Equal(new Member("a", "x:1", true, 0), old.Find("a"));
        // A change keeps the cluster id.
        Assert.Equal("c0ffee", config.Apply(new ConfigChange(ConfigChangeType.Remove, "b"), out _)!.ClusterId);
        // Lengths that would overflow an int are refused, not wrapped around.
        byte[] huge = [.. config.Encode()[..4], 0xff, 0xff, 0xff, 0x7f];
        Assert.Throws<FormatException>(() => ClusterConfig.Decode(huge));
    }
}
