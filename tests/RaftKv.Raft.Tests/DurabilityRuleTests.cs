using System.Runtime.InteropServices;
using RaftKv.Raft.Tests.Harness;

namespace RaftKv.Raft.Tests;

/// <summary>
/// <see cref="Ready.MustSync"/>: which Readies must be durable before their messages leave. A new term or vote must
/// be (Raft §5.2: a server that forgot its vote could vote twice in one term), and so must entries (§5.3: an
/// acknowledged entry counts towards a majority); a commit index alone need not be (it is volatile state in the paper,
/// and a node that restarts with an older one learns it again).
/// </summary>
public sealed class DurabilityRuleTests
{
    /// <summary>What one Ready asked for, read before <see cref="RaftCore.Advance"/> recycles it.</summary>
    private sealed record Taken(bool MustSync, HardState? HardState, int Entries, List<Message> Messages);

    /// <summary>Carries out a node's Ready as <see cref="TestCluster.HandleReady"/> does, and reports what it asked for.</summary>
    private static Taken Take(TestCluster c, string id)
    {
        var n = c.Nodes[id];
        Assert.True(n.Core.HasReady, $"{id} has no Ready");
        var rd = n.Core.GetReady();
        var taken = new Taken(rd.MustSync, rd.HardState, rd.Entries.Count, [.. rd.EagerMessages, .. rd.Messages]);
        if (rd.Entries.Count > 0) n.Storage.Append(CollectionsMarshal.AsSpan((List<Entry>)rd.Entries));
        if (rd.HardState is { } hs) n.Storage.SetHardState(hs);
        n.Core.Advance();
        return taken;
    }

    [Fact]
    public void A_vote_in_a_term_the_voter_already_had_must_be_synced()
    {
        var c = new TestCluster(3);
        c.Settle();
        var voter = c["n3"];
        // Term 5 first comes with a request the voter refuses (the candidate's log is behind): a new term, no vote.
        voter.Step(new Message { Type = MessageType.Vote, From = "n1", To = "n3", Term = 5, Index = 0, LogTerm = 0 });
        var first = Take(c, "n3");
        Assert.Equal((5ul, (string?)null), (first.HardState!.Value.Term, first.HardState.Value.VotedFor));
        Assert.True(first.MustSync);
        Assert.True(first.Messages.Single(m => m.Type == MessageType.VoteResponse).Reject);

        // Then a vote in that same term: only VotedFor changes, and forgetting it could grant a second vote in term 5.
        voter.Step(new Message { Type = MessageType.Vote, From = "n2", To = "n3", Term = 5, Index = 1, LogTerm = 1 });
        var second = Take(c, "n3");
        Assert.False(second.Messages.Single(m => m.Type == MessageType.VoteResponse).Reject);
        Assert.Equal((5ul, "n2"), (second.HardState!.Value.Term, second.HardState.Value.VotedFor));
        Assert.Equal(0, second.Entries);
        Assert.True(second.MustSync, "a vote-only change of the hard state was not marked for sync");
    }

    [Fact]
    public void A_higher_term_alone_must_be_synced()
    {
        var c = new TestCluster(3);
        c.Settle();
        var follower = c["n2"];
        Assert.Null(follower.VotedFor);
        // A heartbeat of a later term: the follower adopts the term and still has voted for nobody; it appends nothing.
        follower.Step(new Message { Type = MessageType.Heartbeat, From = "n3", To = "n2", Term = 9, Commit = 0 });
        var rd = Take(c, "n2");
        Assert.Equal((9ul, (string?)null), (rd.HardState!.Value.Term, rd.HardState.Value.VotedFor));
        Assert.Equal(0, rd.Entries);
        Assert.True(rd.MustSync);
    }

    [Fact]
    public void Entries_must_be_synced_and_a_commit_index_alone_need_not_be()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        Assert.True(c.Propose("n1", "x").Accepted);

        var leader = Take(c, "n1");
        Assert.Equal(1, leader.Entries);
        Assert.True(leader.MustSync);
        foreach (var m in leader.Messages.Where(m => m.Type == MessageType.Append)) c[m.To].Step(m);

        var follower = Take(c, "n2");
        Assert.Equal(1, follower.Entries);
        Assert.True(follower.MustSync);
        Take(c, "n3");
        c["n1"].Step(follower.Messages.Single(m => m.Type == MessageType.AppendResponse));

        // The leader commits: its Ready carries the new commit index and nothing else that needs the disk.
        var commit = Take(c, "n1");
        var entryIndex = c["n1"].LastIndex;
        Assert.Equal(entryIndex, commit.HardState!.Value.Commit);
        Assert.Equal(0, commit.Entries);
        Assert.False(commit.MustSync, "a commit-only Ready was marked for sync");

        // The follower learns the commit index from the leader's next message (at the latest its next heartbeat):
        // again no sync needed.
        var carrying = commit.Messages.Where(m => m.To == "n2" && m.Commit >= entryIndex).ToList();
        for (var tick = 0; tick < 10 && carrying.Count == 0; tick++)
        {
            c["n1"].Tick();
            if (c["n1"].HasReady) carrying = Take(c, "n1").Messages.Where(m => m.To == "n2" && m.Commit >= entryIndex).ToList();
        }
        Assert.NotEmpty(carrying);
        c["n2"].Step(carrying[0]);
        var learned = Take(c, "n2");
        Assert.Equal(entryIndex, learned.HardState!.Value.Commit);
        Assert.Equal(0, learned.Entries);
        Assert.False(learned.MustSync);
    }
}
