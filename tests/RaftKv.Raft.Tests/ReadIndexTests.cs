using RaftKv.Raft.Tests.Harness;

namespace RaftKv.Raft.Tests;

/// <summary>Linearizable reads through ReadIndex (thesis §6.4).</summary>
public sealed class ReadIndexTests
{
    [Fact]
    public void AnswersToRoundsNotYetSent_ConfirmNothing()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        var term = c["n1"].Term;
        // Both followers "answer" a round far ahead; their real answers are then lost.
        foreach (var from in new[] { "n2", "n3" })
            c["n1"].Step(new Message { Type = MessageType.HeartbeatResponse, From = from, To = "n1", Term = term, Context = 1000 });
        c.Drop = m => m.Type == MessageType.HeartbeatResponse;
        c["n1"].ReadIndex(5);
        c.Settle();
        Assert.Empty(c.Nodes["n1"].ReadStates);
    }

    [Fact]
    public void AFollowerForgetsAnAbandonedRead_AndIgnoresItsLateAnswer()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Drop = m => m.Type == MessageType.ReadIndexResponse;
        c["n2"].ReadIndex(7);
        c.Settle();
        var answer = c.Sent.Last(m => m.Type == MessageType.ReadIndexResponse && m.To == "n2");
        Assert.Equal(1, c["n2"].ForwardedReadCount);

        // The runtime gave up on the read: without this the id stays until the term changes.
        c["n2"].AbandonRead(7);
        Assert.Equal(0, c["n2"].ForwardedReadCount);
        c.Drop = null;
        c["n2"].Step(answer);
        c.Settle();
        Assert.Empty(c.Nodes["n2"].ReadStates);
        Assert.Empty(c.Nodes["n2"].FailedReads);
    }

    [Fact]
    public void Thesis6_4_ManyReadsShareOneHeartbeatRound()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Propose("n1", "x");
        c.Settle();
        var commit = c["n1"].CommitIndex;
        for (ulong id = 1; id <= 100; id++) c["n1"].ReadIndex(id);
        var rd = c["n1"].GetReady();
        var heartbeats = rd.EagerMessages.Where(m => m.Type == MessageType.Heartbeat).ToList();
        Assert.Equal(2, heartbeats.Count);
        Assert.Single(heartbeats.Select(h => h.Context).Distinct());
        Assert.Empty(rd.ReadStates);
        c["n1"].Advance();
        foreach (var m in heartbeats) c.InFlight.Add(m);
        c.Settle();
        var states = c.Nodes["n1"].ReadStates;
        Assert.Equal(100, states.Count);
        Assert.All(states, s => Assert.Equal(commit, s.Index));
    }

    [Fact]
    public void ReadsArrivingWhileARoundIsUnanswered_ShareTheNextRound()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Propose("n1", "x");
        c.Settle();
        var leader = c["n1"];

        // Round 1 goes out and is not answered yet.
        leader.ReadIndex(1);
        var node = c.Nodes["n1"];
        Assert.True(c.HandleReady("n1"));
        var round1 = c.InFlight.Where(m => m.Type == MessageType.Heartbeat).ToList();
        Assert.Equal(2, round1.Count);
        c.InFlight.Clear();

        // Reads arriving meanwhile, over several Readies, wait: no second round while the first is in flight.
        for (ulong id = 2; id <= 4; id++)
        {
            leader.ReadIndex(id);
            c.HandleReady("n1");
        }
        Assert.DoesNotContain(c.InFlight, m => m.Type == MessageType.Heartbeat);
        Assert.False(leader.HasReady);

        // Round 1 answered: read 1 is served, and one round goes out for reads 2-4 together.
        foreach (var m in round1) c.InFlight.Add(m);
        c.Settle();
        Assert.Equal([1UL, 2UL, 3UL, 4UL], node.ReadStates.Select(r => r.RequestId).Order());
        var rounds = c.Sent.Where(m => m.Type == MessageType.Heartbeat && m.From == "n1" && m.Context > 0).Select(m => m.Context).Distinct().ToList();
        Assert.Equal(2, rounds.Count);
    }

    [Fact]
    public void ARoundWhoseAnswersAreLost_IsAnsweredThroughThePeriodicHeartbeat()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Propose("n1", "x");
        c.Settle();
        c.Drop = m => m.Type == MessageType.HeartbeatResponse;
        c["n1"].ReadIndex(1);
        c.Settle();
        c["n1"].ReadIndex(2);
        c.Settle();
        Assert.Empty(c.Nodes["n1"].ReadStates);

        c.Drop = null;
        c.Tick(10); // past a heartbeat interval: the heartbeat carries round 1, whose answers release read 1 and start round 2
        Assert.Equal([1UL, 2UL], c.Nodes["n1"].ReadStates.Select(r => r.RequestId).Order());
    }

    [Fact]
    public void ReadsWaitingOnAnUnansweredRound_AreServedWhenTheVoterSetShrinksToTheLeader()
    {
        var c = new TestCluster(2);
        c.Elect("n1");
        c.Propose("n1", "x");
        c.Settle();
        c.Nodes["n2"].Down = true;
        c["n1"].ReadIndex(1);
        c.Settle(); // round 1 goes to n2, which is down: no answer will ever come
        c["n1"].ReadIndex(2); // waits for round 1
        Assert.True(c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.Remove, "n2")).Accepted);
        c.Settle();
        c.Tick(5);
        Assert.Equal(Role.Leader, c["n1"].Role);
        Assert.Single(c["n1"].Config.Voters);
        Assert.Equal([1UL, 2UL], c.Nodes["n1"].ReadStates.Select(r => r.RequestId).Order());
    }

    [Fact]
    public void Thesis6_4_NewLeaderServesNoReadBeforeItsNoOpCommits()
    {
        var c = new TestCluster(3);
        c.Settle();
        c.Drop = m => m.Type == MessageType.AppendResponse;
        c["n1"].Campaign();
        c.Settle();
        Assert.Equal(Role.Leader, c["n1"].Role);
        c["n1"].ReadIndex(7);
        c.Settle();
        Assert.Empty(c.Nodes["n1"].ReadStates);
        Assert.Equal(1, c["n1"].PendingReadCount);
        c.Drop = null;
        c.Tick();
        var s = Assert.Single(c.Nodes["n1"].ReadStates);
        Assert.Equal(7UL, s.RequestId);
        Assert.True(c["n1"].TermAt(s.Index) == c["n1"].Term, "the read index includes the new leader's no-op");
    }

    [Fact]
    public void Thesis6_4_FollowerGetsItsReadIndexFromTheLeader()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Propose("n1", "x");
        c.Settle();
        c["n2"].ReadIndex(42);
        c.Settle();
        var s = Assert.Single(c.Nodes["n2"].ReadStates);
        Assert.Equal(42UL, s.RequestId);
        Assert.Equal(c["n1"].CommitIndex, s.Index);
        Assert.Contains(c.Sent, m => m.Type == MessageType.ReadIndex && m.From == "n2" && m.To == "n1");
    }

    [Fact]
    public void Thesis6_4_DeposedLeaderCannotConfirmReadsAndFailsThem()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Isolate("n1");
        c["n1"].ReadIndex(1);
        c.Settle();
        Assert.Empty(c.Nodes["n1"].ReadStates);
        c.Tick(25);
        Assert.NotEqual(Role.Leader, c["n1"].Role);
        var f = Assert.Single(c.Nodes["n1"].FailedReads);
        Assert.Equal(1UL, f.RequestId);
        Assert.Empty(c.Nodes["n1"].ReadStates);
    }

    [Fact]
    public void ReadWithNoLeaderKnown_FailsAtOnce()
    {
        var c = new TestCluster(3);
        c["n2"].ReadIndex(5);
        c.Settle();
        var f = Assert.Single(c.Nodes["n2"].FailedReads);
        Assert.Equal(ReadFailureReason.NoLeader, f.Reason);
    }

    [Fact]
    public void SingleVoterLeader_ConfirmsReadsWithoutMessages()
    {
        var c = new TestCluster(1);
        c.Elect("n1");
        c.Settle();
        c.Sent.Clear();
        c["n1"].ReadIndex(3);
        c.Settle();
        Assert.Single(c.Nodes["n1"].ReadStates);
        Assert.Empty(c.Sent);
    }
}
