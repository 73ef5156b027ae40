namespace RaftKv.Raft.Tests;

public sealed class ProposalTrackerTests
{
    private readonly List<(string, ProposalOutcome)> _done = [];
    private void Resolve(string token, ProposalOutcome o) => _done.Add((token, o));

    [Fact]
    public void SameIndexSameTerm_IsApplied_OtherTermIsSuperseded()
    {
        var t = new ProposalTracker<string>();
        t.Add(5, 2, "a", Resolve);
        t.Add(6, 2, "b", Resolve);
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
        t.Add(10, 2, "stale", Resolve);
        t.Add(11, 4, "current", Resolve);
        // An entry of term 3 at index 4: no entry of term 2 can ever commit after it.
        t.OnApplied(4, 3, Resolve);
        Assert.Equal([("stale", ProposalOutcome.Superseded)], _done);
        Assert.Equal(1, t.Count);
    }

    [Fact]
    public void SnapshotOverPendingProposals_MakesThemUnknown()
    {
        var t = new ProposalTracker<string>();
        t.Add(5, 2, "covered", Resolve);
        t.Add(9, 2, "after", Resolve);
        t.OnSnapshotRestored(7, 2, Resolve);
        Assert.Equal([("covered", ProposalOutcome.Unknown)], _done);
        t.Clear(Resolve);
        Assert.Equal(("after", ProposalOutcome.Unknown), _done[^1]);
    }
}
