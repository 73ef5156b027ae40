using RaftKv.Raft.Tests.Harness;

namespace RaftKv.Raft.Tests;

/// <summary>Scenarios found by reviewing the core against the paper, kept so they stay fixed.</summary>
public sealed class RegressionTests
{
    [Fact]
    public void Thesis10_2_1_SingleVoterSendsNothingInATermThatIsNotDurableYet()
    {
        var c = new TestCluster(1, nonMembers: 1);
        c.Elect("n1");
        c["n1"].ProposeConfigChange(new ConfigChange(ConfigChangeType.AddNonVoter, "n2", "a2"));
        c.Settle();
        c.Crash("n1");
        c.Restart("n1");
        // A single voter wins a new term inside one call; that term is only in memory until the next sync.
        c["n1"].Campaign();
        Assert.Equal(Role.Leader, c["n1"].Role);
        var index = c["n1"].Propose(TestCluster.Bytes("X")).Index;
        var rd = c["n1"].GetReady();
        Assert.NotNull(rd.HardState);
        Assert.DoesNotContain(rd.EagerMessages, m => m.Type == MessageType.Append);
        // Crash before the sync: nothing of that term reached anyone.
        c.Crash("n1");
        c.Restart("n1");
        c["n1"].Campaign();
        c.Propose("n1", "Y");
        c.Tick(3);
        var at1 = c.Nodes["n1"].Applied.Single(e => e.Index == index);
        var at2 = c.Nodes["n2"].Applied.Single(e => e.Index == index);
        Assert.Equal(TestCluster.Text(at1), TestCluster.Text(at2));
        Assert.Equal("Y", TestCluster.Text(at2));
    }

    [Fact]
    public void Section7_SnapshotMatchingTheFollowersLogIsAcknowledgedAtItsIndexOnly()
    {
        var config = new ClusterConfig([new Member("L", "", true), new Member("F", "", true), new Member("G", "", true)]);
        var disk = new MemoryStorage();
        RaftCore.Bootstrap(disk, config);
        // F holds 2..3 of term 1 and a tail of term 2 from a leader that reached only it.
        disk.Append([new Entry(2, 1, EntryType.Normal, TestCluster.Bytes("a")), new Entry(3, 1, EntryType.Normal, TestCluster.Bytes("b")),
                     new Entry(4, 2, EntryType.Normal, TestCluster.Bytes("stale4")), new Entry(5, 2, EntryType.Normal, TestCluster.Bytes("stale5"))]);
        disk.SetHardState(new HardState(2, null, 1));
        var f = new RaftCore(new RaftOptions { Id = "F", Random = new Random(1) }, disk);
        f.Step(new Message { Type = MessageType.InstallSnapshot, From = "L", To = "F", Term = 3, Snapshot = new SnapshotMetadata(3, 1, config) });
        var rd = f.GetReady();
        var ack = rd.Messages.Single(m => m.Type == MessageType.AppendResponse);
        Assert.False(ack.Reject);
        Assert.Equal(3UL, ack.Index);
        f.Advance();
    }

    [Fact]
    public void Thesis6_4_ForwardedReadFailsWhenTheFollowerMovesToANewTerm()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c["n2"].ReadIndex(7);
        c.HandleReady("n2");
        var forwarded = c.InFlight.Single(m => m.Type == MessageType.ReadIndex);
        c.InFlight.Clear();
        c["n1"].Step(forwarded);
        // The leader confirms and answers, but the answer is held back while n2 moves to term 3.
        c.Drop = m => m.To == "n2";
        c.Settle();
        var answer = c.Sent.Last(m => m.Type == MessageType.ReadIndexResponse && m.To == "n2");
        c.Drop = null;
        c["n2"].Step(new Message { Type = MessageType.Vote, From = "n3", To = "n2", Term = 3, Index = 100, LogTerm = 100, Transfer = true });
        c.HandleReady("n2");
        var failed = Assert.Single(c.Nodes["n2"].FailedReads);
        Assert.Equal(7UL, failed.RequestId);
        // The late answer from term 2 is ignored rather than serving the read after it failed.
        c["n2"].Step(answer);
        c.HandleReady("n2");
        Assert.Empty(c.Nodes["n2"].ReadStates);
    }

    [Fact]
    public void ProposalAtAnIndexLaterReusedByTheSameNode_IsStillAppliedWhenAnotherNodeCommitsIt()
    {
        var c = new TestCluster(5, options: id => new RaftOptions { Id = id, PreVote = false, CheckQuorum = false, Random = TestCluster.SeedFor(id) });
        var outcomes = new Dictionary<string, ProposalOutcome>();
        var tracker = new ProposalTracker<string>();
        void Resolve(string token, ProposalOutcome o) => outcomes[token] = o;

        c.Elect("n1");
        var t1 = c["n1"].Term;
        var i = c["n1"].LastIndex + 1;

        // 1. n1 (term t1) proposes A, X, Y at i, i+1, i+2; they reach n2 only.
        foreach (var other in new[] { "n3", "n4", "n5" }) { c.Cut.Add(("n1", other)); c.Cut.Add((other, "n1")); }
        foreach (var (data, idx) in new[] { ("A", i), ("X", i + 1), ("Y", i + 2) })
        {
            var r = c.Propose("n1", data);
            Assert.Equal(idx, r.Index);
            tracker.Add(r.Index, r.Term, data);
        }
        c.Settle();
        Assert.True(c["n1"].CommitIndex < i);
        c.Heal();

        // 2. n3 wins the next term with n4, n5; its no-op at i reaches only n1, which truncates to it.
        c.Drop = m => m.From == "n3" && m.To != "n1" && m.Type is MessageType.Append or MessageType.Heartbeat;
        c.Elect("n3");
        Assert.Equal(c["n3"].Term, c["n1"].TermAt(i));
        c.Crash("n3");

        // 3. n1 wins again; its no-op lands at i+1 and a new proposal C at i+2, where Y was.
        c.Drop = m => m.From == "n1" && m.Type is MessageType.Append or MessageType.Heartbeat;
        c.Elect("n1");
        var proposal = c.Propose("n1", "C");
        Assert.Equal(i + 2, proposal.Index);
        tracker.Add(proposal.Index, proposal.Term, "C");

        // 4. n2, which still holds A, X, Y, wins with n4, n5 and commits them; n1 catches up.
        c.Drop = null;
        c.Isolate("n1");
        c.Elect("n2");
        c.Tick(3);
        c.Heal();
        c.Tick(5);
        foreach (var e in c.Nodes["n1"].Applied.Where(e => e.Index >= i)) tracker.OnApplied(e.Index, e.Term, Resolve);
        var applied = c.Nodes["n1"].Applied.Single(e => e.Index == i + 2);
        Assert.Equal(("Y", t1), (TestCluster.Text(applied), applied.Term));
        // Y applied, so its client must hear "applied", never "not applied"; C lost its index.
        Assert.Equal(ProposalOutcome.Applied, outcomes["Y"]);
        Assert.Equal(ProposalOutcome.Superseded, outcomes["C"]);
    }
}
