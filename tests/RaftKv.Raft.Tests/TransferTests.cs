using RaftKv.Raft.Tests.Harness;

namespace RaftKv.Raft.Tests;

/// <summary>Leadership transfer (thesis §3.10).</summary>
public sealed class TransferTests
{
    [Fact]
    public void Thesis3_10_TargetCampaignsAtOnceAndWins()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        var term = c["n1"].Term;
        Assert.True(c["n1"].TransferLeadership("n2").Accepted);
        c.Settle();
        Assert.Equal(Role.Leader, c["n2"].Role);
        Assert.Equal(term + 1, c["n2"].Term);
        Assert.Equal("n2", c["n1"].Leader);
        Assert.Contains(c.Sent, m => m.Type == MessageType.TimeoutNow && m.To == "n2");
    }

    [Fact]
    public void Thesis3_10_LaggingTargetIsCaughtUpFirst()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Isolate("n3");
        for (var i = 0; i < 20; i++) c.Propose("n1", "e" + i);
        c.Settle();
        c.Heal();
        Assert.True(c["n1"].TransferLeadership("n3").Accepted);
        c.Settle();
        Assert.Equal(Role.Leader, c["n3"].Role);
        Assert.Equal(20, c.AppliedData("n3").Count());
    }

    [Fact]
    public void Thesis3_10_ProposalsRefusedDuringTransferUntilItIsAbandoned()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Drop = m => m.Type == MessageType.TimeoutNow;
        Assert.True(c["n1"].TransferLeadership("n2").Accepted);
        c.Settle();
        var r = c.Propose("n1", "x");
        Assert.Equal(Refusal.TransferInProgress, r.Refusal);
        Assert.Contains("n2", r.Message);
        // After an election timeout without the target taking over, the leader gives up and serves again.
        c.Tick(12);
        Assert.Equal(Role.Leader, c["n1"].Role);
        Assert.Null(c["n1"].LeadTransferee);
        Assert.True(c.Propose("n1", "y").Accepted);
    }

    [Fact]
    public void Transfer_ToNonVoterOrUnknownIsRefused()
    {
        var c = new TestCluster(3, nonMembers: 1);
        c.Elect("n1");
        c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddNonVoter, "n4", "a4"));
        c.Settle();
        Assert.Equal(Refusal.InvalidTransferTarget, c["n1"].TransferLeadership("n4").Refusal);
        Assert.Equal(Refusal.InvalidTransferTarget, c["n1"].TransferLeadership("zz").Refusal);
        Assert.Equal(Refusal.NotLeader, c["n2"].TransferLeadership("n3").Refusal);
    }
}
