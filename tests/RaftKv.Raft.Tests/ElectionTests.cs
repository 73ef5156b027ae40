using RaftKv.Raft.Tests.Harness;

namespace RaftKv.Raft.Tests;

/// <summary>Leader election: Raft §5.2, §5.4.1; pre-vote (thesis §9.6); check-quorum and leader lease (thesis §6.2, §4.2.3).</summary>
public sealed class ElectionTests
{
    [Fact]
    public void Section5_2_CandidateWithMajorityBecomesLeaderInNewTerm()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        Assert.Equal(Role.Leader, c["n1"].Role);
        Assert.Equal(2UL, c["n1"].Term);
        foreach (var id in new[] { "n2", "n3" })
        {
            Assert.Equal(Role.Follower, c[id].Role);
            Assert.Equal("n1", c[id].Leader);
            Assert.Equal(2UL, c[id].Term);
        }
        // The leader's no-op of its term commits everywhere.
        Assert.All(c.Nodes.Values, n => Assert.Equal(2UL, n.Core.CommitIndex));
    }

    [Fact]
    public void Section5_2_FollowerGrantsOneVotePerTerm()
    {
        var c = new TestCluster(3);
        var voter = c["n3"];
        voter.Step(new Message { Type = MessageType.Vote, From = "n1", To = "n3", Term = 5, Index = 1, LogTerm = 1 });
        voter.Step(new Message { Type = MessageType.Vote, From = "n2", To = "n3", Term = 5, Index = 1, LogTerm = 1 });
        var rd = voter.GetReady();
        var answers = rd.Messages.Where(m => m.Type == MessageType.VoteResponse).ToList();
        Assert.Equal(2, answers.Count);
        Assert.False(answers.Single(m => m.To == "n1").Reject);
        Assert.True(answers.Single(m => m.To == "n2").Reject);
        // The vote is part of the hard state that must be durable before the answers leave.
        Assert.Equal("n1", rd.HardState!.Value.VotedFor);
        Assert.Empty(rd.EagerMessages);
        voter.Advance();
    }

    [Fact]
    public void Section5_4_1_VoteDeniedToCandidateWithLessUpToDateLog()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Propose("n1", "x");
        c.Settle();
        var voter = c["n2"];
        // Same last term but shorter log, then an older last term with a longer log: both refused.
        voter.Step(new Message { Type = MessageType.Vote, From = "n3", To = "n2", Term = 9, Index = 2, LogTerm = 2, Transfer = true });
        voter.Step(new Message { Type = MessageType.Vote, From = "n3", To = "n2", Term = 10, Index = 50, LogTerm = 1, Transfer = true });
        var rd = voter.GetReady();
        Assert.All(rd.Messages.Where(m => m.Type == MessageType.VoteResponse), m => Assert.True(m.Reject));
        voter.Advance();
    }

    [Fact]
    public void Section5_2_ElectionTimeoutIsRandomizedWithinTTo2T()
    {
        var seen = new HashSet<int>();
        for (var seed = 0; seed < 200; seed++)
        {
            var storage = new MemoryStorage();
            RaftCore.Bootstrap(storage, new ClusterConfig([new Member("a", "", true), new Member("b", "", true), new Member("c", "", true)]));
            var core = new RaftCore(new RaftOptions { Id = "a", ElectionTicks = 10, Random = new Random(seed) }, storage);
            var ticks = 0;
            while (core.Role == Role.Follower)
            {
                core.Tick();
                ticks++;
                Assert.True(ticks < 20, "no campaign within 2T");
            }
            Assert.InRange(ticks, 10, 19);
            seen.Add(ticks);
        }
        Assert.True(seen.Count >= 8, $"timeouts are not spread: {string.Join(",", seen)}");
    }

    [Fact]
    public void Section5_1_LeaderStepsDownOnHigherTerm()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c["n1"].Step(new Message { Type = MessageType.Append, From = "n2", To = "n1", Term = 7, Index = 0, LogTerm = 0 });
        Assert.Equal(Role.Follower, c["n1"].Role);
        Assert.Equal(7UL, c["n1"].Term);
        Assert.Equal("n2", c["n1"].Leader);
    }

    [Fact]
    public void Thesis9_6_PreVote_IsolatedNodeNeitherRaisesTermNorDeposesLeaderOnReturn()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        var term = c["n1"].Term;
        c.Isolate("n3");
        c.Tick(100);
        // Cut off, n3 kept asking for pre-votes but never raised its term.
        Assert.Equal(term, c["n3"].Term);
        Assert.NotEqual(Role.Leader, c["n3"].Role);
        c.Heal();
        c.Tick(30);
        Assert.Equal(Role.Leader, c["n1"].Role);
        Assert.Equal(term, c["n1"].Term);
        Assert.Equal("n1", c["n3"].Leader);
    }

    [Fact]
    public void WithoutPreVote_IsolatedNodeRaisesTerm_ShowingWhatPreVotePrevents()
    {
        var c = new TestCluster(3, options: id => new RaftOptions { Id = id, PreVote = false, Random = TestCluster.SeedFor(id) });
        c.Elect("n1");
        var term = c["n1"].Term;
        c.Isolate("n3");
        c.Tick(100);
        Assert.True(c["n3"].Term > term);
    }

    [Fact]
    public void Thesis6_2_CheckQuorum_LeaderCutOffFromQuorumStepsDown()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Isolate("n1");
        // Within two election timeouts the leader must notice it hears from nobody.
        c.Tick(20);
        Assert.NotEqual(Role.Leader, c["n1"].Role);
        // And the other two elect a leader among themselves.
        c.Tick(40);
        Assert.Contains(new[] { "n2", "n3" }, id => c[id].Role == Role.Leader);
    }

    [Fact]
    public void Thesis4_2_3_LeaderLease_VoteRequestIgnoredWhileLeaderIsHeard()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        var follower = c["n2"];
        follower.Step(new Message { Type = MessageType.Vote, From = "n3", To = "n2", Term = 50, Index = 100, LogTerm = 100 });
        Assert.Equal(2UL, follower.Term);
        Assert.False(follower.HasReady && follower.GetReady().Messages.Any(m => m.Type == MessageType.VoteResponse));
    }

    [Fact]
    public void SingleVoter_ElectsItselfAtOnce()
    {
        var c = new TestCluster(1);
        c.Tick(25);
        Assert.Equal(Role.Leader, c["n1"].Role);
        var r = c.Propose("n1", "solo");
        Assert.True(r.Accepted);
        c.Settle();
        Assert.Equal(["solo"], c.AppliedData("n1"));
    }

    [Fact]
    public void NodeOutsideTheConfiguration_NeverCampaigns()
    {
        var c = new TestCluster(3, nonMembers: 1);
        c.Tick(100);
        Assert.Equal(Role.Follower, c["n4"].Role);
        Assert.Equal(0UL, c["n4"].Term);
        Assert.DoesNotContain(c.Sent, m => m.From == "n4");
    }
}
