namespace RaftKv.Raft.Tests;

public sealed class ProposalTrackerTests
{
    private readonly List<(string, ProposalOutcome)> _done = [];
    private void Resolve(string token, ProposalOutcome o) => _done.Add((token, o));

    [Fact]
    public void SameIndexSameTerm_IsApplied_OtherTermIsSuperseded()
    {
        var t = new ProposalTracker<string>();
        t.Add(5, 2, "a");
        t.Add(6, 2, "b");
        t.OnApplied(5, 2, Resolve);
        t.OnApplied(6, 3, Resolve);
        Assert.Equal([("a", ProposalOutcome.Applied), ("b", ProposalOutcome.Superseded)], _done);
        Assert.Equal(0, t.Count);
    }

    [Fact]
    public void NewerTermCommittedBelow_SupersedesOlderProposalsAbove()
    {
        var t = new ProposalTracker<string>();
        t.OnApplied(3, 2, Resolve);
        t.Add(10, 2, "stale");
        t.Add(11, 4, "current");
        // An entry of term 3 at index 4: no entry of term 2 can ever commit after it.
        t.OnApplied(4, 3, Resolve);
        Assert.Equal([("stale", ProposalOutcome.Superseded)], _done);
        Assert.Equal(1, t.Count);
    }

    [Fact]
    public void TwoProposalsAtOneIndex_OnlyTheCommittedEntryDecides()
    {
        // A node led in term 2 and, after losing its tail, again in term 4 at the same index. A newer proposal there
        // says nothing about the older one, which another node may still get committed.
        var t = new ProposalTracker<string>();
        t.Add(7, 2, "old");
        t.Add(7, 4, "new");
        Assert.Empty(_done);
        t.OnApplied(7, 2, Resolve);
        Assert.Equal([("old", ProposalOutcome.Applied), ("new", ProposalOutcome.Superseded)], _done);
        Assert.Equal(0, t.Count);
    }

    [Fact]
    public void SnapshotOverPendingProposals_MakesThemUnknown()
    {
        var t = new ProposalTracker<string>();
        t.Add(5, 2, "covered");
        t.Add(9, 2, "after");
        t.OnSnapshotRestored(7, 2, Resolve);
        Assert.Equal([("covered", ProposalOutcome.Unknown)], _done);
        t.Clear(Resolve);
        Assert.Equal(("after", ProposalOutcome.Unknown), _done[^1]);
    }
}
