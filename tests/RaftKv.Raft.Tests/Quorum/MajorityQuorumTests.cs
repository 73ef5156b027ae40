using System.Collections.Immutable;

namespace RaftKv.Raft.Tests.Quorum;

public class MajorityQuorumTests
{
    private static MajorityQuorum Of(params string[] voters) => new(voters.ToImmutableArray());

    // Voters n1..nk with the given indexes; anyone not listed reports 0.
    private static ulong Committed(MajorityQuorum q, Dictionary<string, ulong> indexes) =>
        q.CommittedIndex(indexes, static (d, id) => d.GetValueOrDefault(id));

    private static Dictionary<string, ulong> Indexes(params ulong[] values) =>
        values.Select((v, i) => ("n" + (i + 1), v)).ToDictionary(p => p.Item1, p => p.v);

    private static VoteOutcome Tally(MajorityQuorum q, Dictionary<string, bool> votes) =>
        q.TallyVotes(votes, static (d, id) => d.TryGetValue(id, out var g) ? g : null);

    [Theory]
    [InlineData(1, 1)]
    [InlineData(2, 2)]
    [InlineData(3, 2)]
    [InlineData(4, 3)]
    [InlineData(5, 3)]
    [InlineData(6, 4)]
    [InlineData(7, 4)]
    public void Size_IsAMajority(int voters, int size) =>
        Assert.Equal(size, Of(Enumerable.Range(1, voters).Select(i => "n" + i).ToArray()).Size);

    [Fact]
    public void CommittedIndex_NoVoters_IsZero()
    {
        Assert.Equal(0UL, Committed(Of(), Indexes(5)));
        Assert.Equal(0UL, Committed(default, Indexes(5)));
    }

    [Theory]
    [InlineData(new ulong[] { 7 }, 7UL)]
    [InlineData(new ulong[] { 7, 3 }, 3UL)]          // two voters: both must hold it
    [InlineData(new ulong[] { 9, 3, 5 }, 5UL)]
    [InlineData(new ulong[] { 5, 5, 1 }, 5UL)]
    [InlineData(new ulong[] { 9, 8, 2, 1 }, 2UL)]    // four voters: three must hold it, a 2-2 split is not enough
    [InlineData(new ulong[] { 9, 8, 7, 1 }, 7UL)]
    [InlineData(new ulong[] { 1, 9, 2, 8, 3 }, 3UL)] // order does not matter
    [InlineData(new ulong[] { 0, 0, 0, 4, 4 }, 0UL)]
    public void CommittedIndex_IsTheHighestIndexAMajorityHolds(ulong[] matches, ulong expected)
    {
        var ids = Enumerable.Range(1, matches.Length).Select(i => "n" + i).ToArray();
        Assert.Equal(expected, Committed(Of(ids), Indexes(matches)));
    }

    [Fact]
    public void CommittedIndex_CountsVotersOnly()
    {
        // n4 and n5 are non-voters: their high indexes must not lift the commit index of the three voters.
        var indexes = Indexes(9, 1, 1, 9, 9);
        Assert.Equal(1UL, Committed(Of("n1", "n2", "n3"), indexes));
    }

    [Fact]
    public void CommittedIndex_BeyondTheStackLimit()
    {
        var ids = Enumerable.Range(1, 101).Select(i => "n" + i).ToArray();
        var indexes = ids.ToDictionary(id => id, id => ulong.Parse(id.AsSpan(1), System.Globalization.CultureInfo.InvariantCulture));
        // 51 of 101 voters hold 51 or more.
        Assert.Equal(51UL, Committed(Of(ids), indexes));
    }

    [Fact]
    public void TallyVotes_SingleVoter()
    {
        var q = Of("n1");
        Assert.Equal(VoteOutcome.Pending, Tally(q, []));
        Assert.Equal(VoteOutcome.Won, Tally(q, new() { ["n1"] = true }));
        Assert.Equal(VoteOutcome.Lost, Tally(q, new() { ["n1"] = false }));
    }

    [Fact]
    public void TallyVotes_TwoVoters_NeedBoth()
    {
        var q = Of("n1", "n2");
        Assert.Equal(VoteOutcome.Pending, Tally(q, new() { ["n1"] = true }));
        Assert.Equal(VoteOutcome.Won, Tally(q, new() { ["n1"] = true, ["n2"] = true }));
        Assert.Equal(VoteOutcome.Lost, Tally(q, new() { ["n1"] = true, ["n2"] = false }));
    }

    [Fact]
    public void TallyVotes_ThreeVoters()
    {
        var q = Of("n1", "n2", "n3");
        Assert.Equal(VoteOutcome.Pending, Tally(q, new() { ["n1"] = true, ["n2"] = false }));
        Assert.Equal(VoteOutcome.Won, Tally(q, new() { ["n1"] = true, ["n3"] = true }));
        Assert.Equal(VoteOutcome.Lost, Tally(q, new() { ["n2"] = false, ["n3"] = false }));
    }

    [Fact]
    public void TallyVotes_FourVoters_ATieIsLost()
    {
        var q = Of("n1", "n2", "n3", "n4");
        Assert.Equal(VoteOutcome.Pending, Tally(q, new() { ["n1"] = true, ["n2"] = true }));
        Assert.Equal(VoteOutcome.Pending, Tally(q, new() { ["n1"] = true, ["n2"] = false }));
        // Two against: the other two can bring at most two grants, one short of three.
        Assert.Equal(VoteOutcome.Lost, Tally(q, new() { ["n1"] = true, ["n2"] = true, ["n3"] = false, ["n4"] = false }));
        Assert.Equal(VoteOutcome.Won, Tally(q, new() { ["n1"] = true, ["n2"] = true, ["n3"] = true, ["n4"] = false }));
    }

    [Fact]
    public void TallyVotes_FiveVoters()
    {
        var q = Of("n1", "n2", "n3", "n4", "n5");
        Assert.Equal(VoteOutcome.Pending, Tally(q, new() { ["n1"] = true, ["n2"] = true, ["n3"] = false, ["n4"] = false }));
        Assert.Equal(VoteOutcome.Won, Tally(q, new() { ["n1"] = true, ["n2"] = true, ["n5"] = true }));
        Assert.Equal(VoteOutcome.Lost, Tally(q, new() { ["n1"] = true, ["n2"] = false, ["n3"] = false, ["n4"] = false }));
    }

    [Fact]
    public void TallyVotes_IgnoresNonVoters()
    {
        var q = Of("n1", "n2", "n3");
        Assert.Equal(VoteOutcome.Pending, Tally(q, new() { ["n1"] = true, ["n4"] = true, ["n5"] = true }));
        Assert.Equal(VoteOutcome.Pending, Tally(q, new() { ["n1"] = true, ["n4"] = false, ["n5"] = false }));
    }

    [Fact]
    public void TallyVotes_NoVoters_IsLost() => Assert.Equal(VoteOutcome.Lost, Tally(Of(), new() { ["n1"] = true }));

    [Theory]
    [InlineData(1, 1, true)]
    [InlineData(1, 0, false)]
    [InlineData(2, 1, false)]
    [InlineData(2, 2, true)]
    [InlineData(3, 1, false)]
    [InlineData(3, 2, true)]
    [InlineData(4, 2, false)] // half is not a majority
    [InlineData(4, 3, true)]
    [InlineData(5, 2, false)]
    [InlineData(5, 3, true)]
    public void IsActive_NeedsAMajority(int voters, int active, bool expected)
    {
        var ids = Enumerable.Range(1, voters).Select(i => "n" + i).ToArray();
        var heard = ids.Take(active).ToHashSet();
        Assert.Equal(expected, Of(ids).IsActive(heard, static (h, id) => h.Contains(id)));
    }

    [Fact]
    public void IsActive_IgnoresNonVoters()
    {
        var heard = new HashSet<string> { "n1", "n4", "n5" };
        Assert.False(Of("n1", "n2", "n3").IsActive(heard, static (h, id) => h.Contains(id)));
    }

    [Fact]
    public void CommittedIndex_DoesNotAllocate()
    {
        var q = Of("n1", "n2", "n3", "n4", "n5");
        var indexes = Indexes(5, 4, 3, 2, 1);
        Committed(q, indexes);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++) Committed(q, indexes);
        Assert.Equal(before, GC.GetAllocatedBytesForCurrentThread());
    }
}
