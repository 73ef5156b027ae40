namespace RaftKv.Raft.Tests.Quorum;

public class ProgressTrackerTests
{
    private static ClusterConfig Config(string voters, string nonVoters = "") =>
        new(voters.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(id => new Member(id, "", true))
            .Concat(nonVoters.Split(',', StringSplitOptions.RemoveEmptyEntries).Select(id => new Member(id, "", false))));

    private static ProgressTracker Tracker(ClusterConfig config, params string[] tracked)
    {
        var t = new ProgressTracker(4, 0) { Config = config };
        foreach (var id in tracked) t.Add(id, 1);
        return t;
    }

    [Fact]
    public void CommittedIndex_FollowsTheConfigurationInForce()
    {
        var t = Tracker(Config("n1,n2,n3"), "n1", "n2", "n3", "n4");
        t.Find("n1")!.Match = 9;
        t.Find("n2")!.Match = 5;
        t.Find("n4")!.Match = 9;
        Assert.Equal(5UL, t.CommittedIndex());
        // n4 becomes a voter and n3 leaves: the same acknowledgements now make 9 a majority.
        t.Config = Config("n1,n2,n4");
        Assert.Equal(9UL, t.CommittedIndex());
        // A non-voter's acknowledgement never counts.
        t.Config = Config("n1,n2,n3", nonVoters: "n4");
        Assert.Equal(5UL, t.CommittedIndex());
    }

    [Fact]
    public void QuorumActive_CountsSelfAndStartsANewPeriod()
    {
        var t = Tracker(Config("n1,n2,n3"), "n1", "n2", "n3");
        Assert.False(t.QuorumActive("n1"));
        t.Find("n2")!.RecentActive = true;
        Assert.True(t.QuorumActive("n1"));
        // The check cleared what it counted: nobody was heard from in the new period.
        Assert.False(t.Find("n2")!.RecentActive);
        Assert.True(t.Find("n1")!.RecentActive);
        Assert.False(t.QuorumActive("n1"));
    }

    [Fact]
    public void RecordVote_FirstAnswerCounts_UntilReset()
    {
        var t = Tracker(Config("n1,n2,n3"));
        Assert.Equal(VoteOutcome.Pending, t.RecordVote("n1", granted: true));
        Assert.Equal(VoteOutcome.Pending, t.RecordVote("n2", granted: false));
        // A duplicate answer that says otherwise changes nothing.
        Assert.Equal(VoteOutcome.Pending, t.RecordVote("n2", granted: true));
        Assert.Equal(VoteOutcome.Won, t.RecordVote("n3", granted: true));
        t.ResetVotes();
        Assert.Equal(VoteOutcome.Pending, t.RecordVote("n2", granted: true));
    }
}
