using RaftKv.Raft.Tests.Harness;

namespace RaftKv.Raft.Tests;

/// <summary>Log replication (§5.3), commitment (§5.4.2), durability ordering (thesis §10.2.1), flow control and refusals.</summary>
public sealed class ReplicationTests
{
    private static Func<string, RaftOptions> OneEntryPerMessage(int inflight = 256, bool checkQuorum = true) =>
        id => new RaftOptions { Id = id, MaxSizePerMessage = 1, MaxInflightMessages = inflight, CheckQuorum = checkQuorum, Random = TestCluster.SeedFor(id) };

    [Fact]
    public void Section5_3_CommittedEntriesReachEveryFollowerInOrder()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        for (var i = 0; i < 10; i++) Assert.True(c.Propose("n1", "v" + i).Accepted);
        c.Settle();
        var expected = Enumerable.Range(0, 10).Select(i => "v" + i).ToList();
        foreach (var id in new[] { "n1", "n2", "n3" }) Assert.Equal(expected, c.AppliedData(id));
    }

    [Fact]
    public void Section5_3_ConflictingUncommittedSuffixIsReplacedByNewLeadersLog()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Isolate("n1");
        for (var i = 0; i < 3; i++) c.Propose("n1", "lost" + i);
        c.Settle();
        c.Tick(40);
        var leader = new[] { "n2", "n3" }.Single(id => c[id].Role == Role.Leader);
        c.Propose(leader, "kept");
        c.Settle();
        c.Heal();
        c.Tick(30);
        foreach (var id in new[] { "n1", "n2", "n3" })
        {
            Assert.DoesNotContain(c.AppliedData(id), d => d.StartsWith("lost", StringComparison.Ordinal));
            Assert.Contains("kept", c.AppliedData(id));
        }
        Assert.Equal(c["n2"].LastIndex, c["n1"].LastIndex);
        for (var i = 1UL; i <= c["n1"].LastIndex; i++) Assert.Equal(c["n2"].TermAt(i), c["n1"].TermAt(i));
    }

    [Fact]
    public void FastBacktracking_SkipsAWholeConflictingTermPerRoundTrip()
    {
        var c = new TestCluster(3, options: OneEntryPerMessage());
        c.Elect("n1");
        c.Isolate("n1");
        // n1 (term 2) appends 200 entries that will never commit.
        for (var i = 0; i < 200; i++) c.Propose("n1", "stale" + i);
        c.Settle();
        c.Tick(40);
        // n2 or n3 leads term 3 and commits 300 entries without n1.
        var first = new[] { "n2", "n3" }.Single(id => c[id].Role == Role.Leader);
        for (var i = 0; i < 300; i++) c.Propose(first, "new" + i);
        c.Settle();
        // Leadership moves to the other one, whose view of n1 starts at the end of its long log.
        var second = first == "n2" ? "n3" : "n2";
        Assert.True(c[first].TransferLeadership(second).Accepted);
        c.Settle();
        Assert.Equal(Role.Leader, c[second].Role);
        c.Heal();
        c.Sent.Clear();
        c.Tick(5);
        // One rejection carries n1's conflicting term; the leader jumps over all 200 entries of it at once.
        var rejections = c.Sent.Count(m => m.Type == MessageType.AppendResponse && m.From == "n1" && m.Reject);
        Assert.InRange(rejections, 1, 3);
        Assert.Equal(c[second].LastIndex, c["n1"].LastIndex);
        Assert.DoesNotContain(c.AppliedData("n1"), d => d.StartsWith("stale", StringComparison.Ordinal));
        Assert.Equal(300, c.AppliedData("n1").Count(d => d.StartsWith("new", StringComparison.Ordinal)));
    }

    [Fact]
    public void Pipelining_StopsAtTheInflightWindowUntilTheFollowerAnswers()
    {
        var c = new TestCluster(3, options: OneEntryPerMessage(inflight: 4));
        c.Elect("n1");
        c.Drop = m => m.From == "n2" && m.Type == MessageType.AppendResponse;
        c.Sent.Clear();
        for (var i = 0; i < 20; i++)
        {
            c.Propose("n1", "p" + i);
            c.Settle();
        }
        var toN2 = c.Sent.Count(m => m.Type == MessageType.Append && m.To == "n2" && m.Entries.Length > 0);
        var toN3 = c.Sent.Count(m => m.Type == MessageType.Append && m.To == "n3" && m.Entries.Length > 0);
        Assert.Equal(4, toN2);
        Assert.Equal(20, toN3);
        // n3 answers, so everything still commits.
        Assert.Equal(20, c.AppliedData("n1").Count());
    }

    [Fact]
    public void Batching_ManyProposalsInOneTurnTravelInOneAppendPerFollower()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        for (var i = 0; i < 100; i++) c.Propose("n1", "b" + i);
        var rd = c["n1"].GetReady();
        Assert.Equal(100, rd.Entries.Count);
        var appends = rd.EagerMessages.Where(m => m.Type == MessageType.Append).ToList();
        Assert.Equal(2, appends.Count);
        Assert.All(appends, m => Assert.Equal(100, m.Entries.Length));
        c["n1"].Advance();
    }

    [Fact]
    public void DeferredCommitIndex_TravelsWithTheNextBatch_OrAloneOnceTheDeferralEnds()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Propose("n1", "x");
        c.Settle();
        var leader = c["n1"];
        leader.DeferCommitOnlyAppends = true;
        c.Sent.Clear();

        // y commits, but no Append goes out just to say so.
        c.Propose("n1", "y");
        c.Settle();
        var yIndex = leader.CommitIndex;
        Assert.DoesNotContain(c.Sent, m => m.Type == MessageType.Append && m.Entries.Length == 0);
        Assert.All(new[] { "n2", "n3" }, id => Assert.True(c[id].CommitIndex < yIndex, $"{id} was told of the commit"));

        // The next batch's Appends carry it.
        c.Propose("n1", "z");
        c.Settle();
        Assert.All(new[] { "n2", "n3" }, id => Assert.True(c[id].CommitIndex >= yIndex, $"{id} still does not know y committed"));
        Assert.DoesNotContain(c.Sent, m => m.Type == MessageType.Append && m.Entries.Length == 0);

        // z's own commit is deferred; once the deferral ends it goes out alone.
        var zIndex = leader.CommitIndex;
        Assert.True(c["n2"].CommitIndex < zIndex);
        leader.DeferCommitOnlyAppends = false;
        Assert.True(leader.HasReady);
        c.Settle();
        Assert.All(new[] { "n2", "n3" }, id => Assert.Equal(zIndex, c[id].CommitIndex));
        Assert.Contains(c.Sent, m => m.Type == MessageType.Append && m.Entries.Length == 0 && m.Commit == zIndex);
    }

    [Fact]
    public void Thesis10_2_1_LeaderCountsItsOwnEntryOnlyOnceDurable()
    {
        var c = new TestCluster(1);
        c.Elect("n1");
        var leader = c["n1"];
        leader.Propose(TestCluster.Bytes("x"));
        var rd = leader.GetReady();
        Assert.Single(rd.Entries);
        Assert.Empty(rd.CommittedEntries);
        var last = rd.Entries[0].Index;
        Assert.True(leader.CommitIndex < last);
        c.Nodes["n1"].Storage.Append([rd.Entries[0]]);
        leader.Advance();
        // Advance reported the entry durable: now it commits.
        Assert.Equal(last, leader.CommitIndex);
        Assert.True(leader.HasReady);
        Assert.Contains(leader.GetReady().CommittedEntries, e => e.Index == last);
        leader.Advance();
    }

    [Fact]
    public void Thesis10_2_1_LeaderAppendsLeaveEagerlyButFollowerRepliesWaitForPersistence()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Propose("n1", "x");
        var rd = c["n1"].GetReady();
        var appends = rd.EagerMessages.Where(m => m.Type == MessageType.Append).ToList();
        Assert.Equal(2, appends.Count);
        Assert.DoesNotContain(rd.Messages, m => m.Type == MessageType.Append);
        c["n1"].Advance();
        var follower = c["n2"];
        follower.Step(appends.Single(m => m.To == "n2"));
        var frd = follower.GetReady();
        Assert.Single(frd.Entries);
        Assert.Contains(frd.Messages, m => m.Type == MessageType.AppendResponse && !m.Reject);
        Assert.DoesNotContain(frd.EagerMessages, m => m.Type == MessageType.AppendResponse);
        follower.Advance();
    }

    [Fact]
    public void Section5_4_2_Figure8_PreviousTermEntryIsNotCommittedByCountingReplicas()
    {
        // No leader lease here: the script moves faster than election timeouts.
        var c = new TestCluster(5, options: OneEntryPerMessage(checkQuorum: false));
        c.Elect("n1");                                   // term 2, log [1@1, 2@2] everywhere
        c.Drop = m => m.From == "n1" && m.To is "n3" or "n4" or "n5";
        c.Propose("n1", "old");                          // 3@2 reaches n2 only
        c.Settle();
        c.Drop = null;
        c.Crash("n1");

        // n5 wins term 3 with n3 and n4, appends 3@3, but none of it leaves before it crashes.
        c.Drop = m => m.From == "n5" && m.Type is MessageType.Append or MessageType.Heartbeat;
        c["n5"].Campaign();
        c.Settle();
        Assert.Equal(Role.Leader, c["n5"].Role);
        Assert.Equal(3UL, c["n5"].TermAt(3));
        c.Crash("n5");
        c.Drop = null;

        // n1 returns, wins term 4, and gets 3@2 to n3 and n4, but its own 4@4 to nobody: 3@2 is now on a majority.
        c.Restart("n1");
        c.Drop = m => m.From == "n1" && m.Type == MessageType.Append
            && (m.To == "n2" || (c[m.To].TermAt(3) == 2 && m.Entries.Span.ToArray().Any(e => e.Index >= 4)));
        // Its first pre-vote (for term 3) fails and teaches it term 3; the second one wins term 4.
        for (var i = 0; i < 3 && c["n1"].Role != Role.Leader; i++)
        {
            c["n1"].Campaign();
            c.Settle();
        }
        Assert.Equal(Role.Leader, c["n1"].Role);
        Assert.Equal(4UL, c["n1"].Term);
        var holders = new[] { "n1", "n3", "n4" }.Count(id => c[id].TermAt(3) == 2);
        Assert.Equal(3, holders);
        // §5.4.2: an entry from an earlier term is not committed by counting replicas.
        Assert.True(c["n1"].CommitIndex < 3, $"commit index {c["n1"].CommitIndex}");
        c.Crash("n1");
        c.Drop = null;

        // Which is what makes it safe for n5 to win term 5 and overwrite index 3.
        c.Restart("n5");
        for (var i = 0; i < 3 && c["n5"].Role != Role.Leader; i++)
        {
            c["n5"].Campaign();
            c.Settle();
        }
        Assert.Equal(Role.Leader, c["n5"].Role);
        c.Settle();
        Assert.All(new[] { "n2", "n3", "n4" }, id => Assert.Equal(3UL, c[id].TermAt(3)));
        Assert.DoesNotContain("old", c.AppliedData("n2"));
    }

    [Fact]
    public void Proposal_OnFollowerIsRefusedWithTheKnownLeader()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        var r = c.Propose("n2", "x");
        Assert.False(r.Accepted);
        Assert.Equal(Refusal.NotLeader, r.Refusal);
        Assert.Equal("n1", r.Leader);
        Assert.False(string.IsNullOrEmpty(r.Message));
    }

    [Fact]
    public void Proposal_BeyondTheUncommittedBudgetIsRefusedAsQueueFull()
    {
        var c = new TestCluster(3, options: id => new RaftOptions { Id = id, MaxUncommittedBytes = 1000, Random = TestCluster.SeedFor(id) });
        c.Elect("n1");
        c.Isolate("n1");
        var results = Enumerable.Range(0, 50).Select(i => c["n1"].Propose(new byte[100])).ToList();
        Assert.Contains(results, r => r.Refusal == Refusal.QueueFull);
        Assert.Contains(results, r => r.Accepted);
        c.Heal();
        c.Settle();
        // Once committed, the budget frees up again.
        Assert.True(c["n1"].Propose(new byte[100]).Accepted);
    }

    [Fact]
    public void Restart_RecoversTermVoteLogAndConfigurationFromStorage()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Propose("n1", "a");
        c.Settle();
        var before = (c["n2"].Term, c["n2"].VotedFor, c["n2"].LastIndex, c["n2"].CommitIndex, c["n2"].Config);
        c.Crash("n2");
        c.Restart("n2");
        Assert.Equal(before, (c["n2"].Term, c["n2"].VotedFor, c["n2"].LastIndex, c["n2"].CommitIndex, c["n2"].Config));
        // It re-applies the committed log before serving anything.
        c.Settle();
        Assert.Equal(["a"], c.AppliedData("n2"));
    }
}
