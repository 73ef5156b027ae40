using RaftKv.Raft.Tests.Harness;

namespace RaftKv.Raft.Tests;

/// <summary>Single-server membership changes (thesis §4.1, §4.2.2) and non-voters (§4.2.1).</summary>
public sealed class MembershipTests
{
    [Fact]
    public void Thesis4_1_AddedVoterTakesEffectWhenAppendedNotWhenCommitted()
    {
        var c = new TestCluster(3, nonMembers: 1);
        c.Elect("n1");
        var r = c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddVoter, "n4", "addr-n4"));
        Assert.True(r.Accepted);
        // Before anything is sent or committed, the leader already uses the new configuration.
        Assert.True(c["n1"].Config.IsVoter("n4"));
        Assert.True(c["n1"].ConfigChangePending);
        c.Settle();
        Assert.False(c["n1"].ConfigChangePending);
        // The new voter received the whole log and the configuration.
        Assert.True(c["n4"].Config.IsVoter("n4"));
        Assert.Equal(c["n1"].LastIndex, c["n4"].LastIndex);
        Assert.Equal(4, c["n1"].Config.Voters.Length);
    }

    [Fact]
    public void Thesis4_1_SecondChangeRefusedWhileFirstIsUncommitted()
    {
        var c = new TestCluster(3, nonMembers: 2);
        c.Elect("n1");
        Assert.True(c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddVoter, "n4", "a4")).Accepted);
        var second = c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddVoter, "n5", "a5"));
        Assert.Equal(Refusal.ConfigChangeInProgress, second.Refusal);
        Assert.False(string.IsNullOrEmpty(second.Message));
        c.Settle();
        Assert.True(c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddVoter, "n5", "a5")).Accepted);
    }

    [Fact]
    public void Thesis4_1_NewLeaderRefusesChangesUntilItCommitsAnEntryOfItsTerm()
    {
        var c = new TestCluster(3, nonMembers: 1);
        c.Settle();
        // Win the election but keep the no-op from being acknowledged.
        c.Drop = m => m.Type == MessageType.AppendResponse;
        c["n1"].Campaign();
        c.Settle();
        Assert.Equal(Role.Leader, c["n1"].Role);
        var r = c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddVoter, "n4", "a4"));
        Assert.Equal(Refusal.ConfigChangeInProgress, r.Refusal);
        c.Drop = null;
        c.Tick();
        Assert.True(c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddVoter, "n4", "a4")).Accepted);
    }

    [Fact]
    public void Thesis4_2_1_NonVoterGetsTheLogButNeverVotesNorCountsForCommit()
    {
        var c = new TestCluster(3, nonMembers: 1);
        c.Elect("n1");
        Assert.True(c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddNonVoter, "n4", "a4")).Accepted);
        c.Settle();
        c.Propose("n1", "x");
        c.Settle();
        Assert.Contains("x", c.AppliedData("n4"));
        Assert.Equal(3, c["n1"].Config.Voters.Length);
        // With both voting followers cut off, the non-voter's acknowledgement does not commit anything.
        c.Cut.UnionWith([("n1", "n2"), ("n1", "n3"), ("n2", "n1"), ("n3", "n1")]);
        var before = c["n1"].CommitIndex;
        c.Propose("n1", "y");
        c.Settle();
        Assert.Equal(before, c["n1"].CommitIndex);
        Assert.Equal(c["n1"].LastIndex, c["n4"].LastIndex);
        c.Heal();
        // And it never campaigns, however long it hears nothing.
        c.Isolate("n4");
        c.Tick(100);
        Assert.DoesNotContain(c.Sent, m => m.From == "n4" && m.Type is MessageType.PreVote or MessageType.Vote);
    }

    [Fact]
    public void Thesis4_1_PromotedNonVoterBecomesAVoter()
    {
        var c = new TestCluster(3, nonMembers: 1);
        c.Elect("n1");
        c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddNonVoter, "n4", "a4"));
        c.Settle();
        Assert.True(c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddVoter, "n4")).Accepted);
        c.Settle();
        Assert.True(c["n4"].Config.IsVoter("n4"));
        Assert.Equal("a4", c["n4"].Config.Find("n4")!.Address);
    }

    [Fact]
    public void Thesis4_2_2_LeaderRemovingItselfStepsDownOnceRemovalCommits()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        Assert.True(c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.Remove, "n1")).Accepted);
        // Until the removal commits it still leads (a cluster it is no longer part of).
        Assert.Equal(Role.Leader, c["n1"].Role);
        c.Settle();
        Assert.NotEqual(Role.Leader, c["n1"].Role);
        // It handed leadership to an up-to-date voter rather than leave the cluster to time out.
        Assert.Contains(new[] { "n2", "n3" }, id => c[id].Role == Role.Leader);
        var leader = new[] { "n2", "n3" }.Single(id => c[id].Role == Role.Leader);
        Assert.Null(c[leader].Config.Find("n1"));
        Assert.True(c.Propose(leader, "after").Accepted);
        c.Settle();
        Assert.Contains("after", c.AppliedData(leader == "n2" ? "n3" : "n2"));
    }

    /// <summary>
    /// A removed follower hears of its removal: the leader keeps sending it the log and the commit index for an election
    /// timeout after the removal commits, then forgets it. So it knows it is out (and stops campaigning) instead of
    /// waiting for a leader forever.
    /// </summary>
    [Fact]
    public void RemovedFollower_LearnsItWasRemoved_AndNeverCampaigns()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        Assert.True(c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.Remove, "n3")).Accepted);
        c.Tick(3);
        Assert.Null(c["n3"].Config.Find("n3"));
        Assert.True(c["n3"].CommitIndex >= c["n3"].ConfigIndex, "the removed node knows its removal is committed");
        c.Tick(30);
        Assert.DoesNotContain("n3", c["n1"].ReplicationStatus.Keys);
        var sentBefore = c.Sent.Count(m => m.To == "n3");
        c.Tick(30);
        Assert.Equal(sentBefore, c.Sent.Count(m => m.To == "n3"));
        Assert.DoesNotContain(c.Sent, m => m.From == "n3" && m.Type is MessageType.PreVote or MessageType.Vote);
        Assert.Equal(Role.Follower, c["n3"].Role);
    }

    [Fact]
    public void Thesis4_1_TruncatedConfigurationEntryIsRolledBack()
    {
        var c = new TestCluster(3, nonMembers: 1);
        c.Elect("n1");
        c.Isolate("n1");
        c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddVoter, "n4", "a4"));
        c.Settle();
        Assert.True(c["n1"].Config.IsVoter("n4"));
        c.Tick(40);
        var leader = new[] { "n2", "n3" }.Single(id => c[id].Role == Role.Leader);
        c.Propose(leader, "overwrites");
        c.Settle();
        c.Heal();
        c.Tick(20);
        // The uncommitted change was overwritten, and with it n1 went back to the previous configuration.
        Assert.False(c["n1"].Config.IsVoter("n4"));
        Assert.Equal(3, c["n1"].Config.Voters.Length);
    }

    [Fact]
    public void Thesis4_2_2_NodeWhoseRemovalIsUncommittedMayStillCampaignToFinishIt()
    {
        // n1 leads {n1, n2} and appends its own removal, which never reaches n2. n2's log lacks the removal, so n1
        // never votes for it; n1 is not in its own newest configuration. Without letting n1 campaign under the
        // configuration it is leaving, neither could ever win.
        var c = new TestCluster(2);
        c.Elect("n1");
        c.Drop = m => m.From == "n1" && m.To == "n2";
        Assert.True(c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.Remove, "n1")).Accepted);
        c.Tick(30);
        Assert.NotEqual(Role.Leader, c["n1"].Role);
        c.Drop = null;
        c.Tick(100);
        Assert.Equal(Role.Leader, c["n2"].Role);
        Assert.Null(c["n2"].Config.Find("n1"));
        Assert.True(c.Propose("n2", "alone").Accepted);
        c.Settle();
        Assert.Contains("alone", c.AppliedData("n2"));
    }

    [Fact]
    public void InvalidChanges_AreRefusedWithAReason()
    {
        var c = new TestCluster(1);
        c.Elect("n1");
        var r = c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.Remove, "n1"));
        Assert.Equal(Refusal.InvalidConfigChange, r.Refusal);
        Assert.Contains("last voter", r.Message);
        r = c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.Remove, "ghost"));
        Assert.Equal(Refusal.InvalidConfigChange, r.Refusal);
        Assert.Contains("not a member", r.Message);
        var f = new TestCluster(3);
        f.Elect("n1");
        Assert.Equal(Refusal.NotLeader, f["n2"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddVoter, "n9", "x")).Refusal);
    }
}
