using RaftKv.Raft;

namespace RaftKv.Simulation;

/// <summary>
/// Invariants of leadership and progress, checked after every step: election safety (§5.2), leader completeness
/// (§5.4), at most one configuration change in flight, and commit and applied indexes that never go back.
/// </summary>
internal sealed class LeaderChecker(Action<string> fail, LogChecker log)
{
    private readonly Dictionary<ulong, string> _leaderOfTerm = [];

    /// <summary>Leaders elected (one per node and term).</summary>
    public long Elections { get; private set; }

    public void Check(IEnumerable<SimNode> nodes)
    {
        foreach (var n in nodes)
        {
            if (!n.Alive) continue;
            var c = n.Core!;
            if (c.Role == Role.Leader)
            {
                if (!_leaderOfTerm.TryGetValue(c.Term, out var l)) OnNewLeader(n, c);
                else if (l != n.Id) fail($"two leaders in term {c.Term}: {l} and {n.Id}");
                // At most one configuration change in flight, counted from the log the simulator tracks.
                var uncommitted = n.Disk.ConfigEntryIndexes.GetViewBetween(c.CommitIndex + 1, ulong.MaxValue).Count;
                if (uncommitted > 1) fail($"{n.Id} has {uncommitted} uncommitted configuration entries");
            }
            if (c.CommitIndex < n.LastCommitSeen) fail($"{n.Id} commit went back {n.LastCommitSeen} -> {c.CommitIndex}");
            n.LastCommitSeen = c.CommitIndex;
            var applied = n.State!.AppliedIndex;
            if (applied < n.LastAppliedSeen) fail($"{n.Id} applied went back {n.LastAppliedSeen} -> {applied}");
            n.LastAppliedSeen = applied;
            if (c.AppliedIndex != applied) fail($"{n.Id} core thinks applied {c.AppliedIndex}, state machine is at {applied}");
        }
    }

    /// <summary>A new leader holds every committed entry.</summary>
    private void OnNewLeader(SimNode n, RaftCore c)
    {
        Elections++;
        _leaderOfTerm[c.Term] = n.Id;
        var committed = log.MaxCommitted;
        if (committed > 0 && committed + 1 >= c.FirstIndex)
        {
            var t = c.TermAt(committed);
            if (t != log.CommittedTerm(committed))
                fail($"leader completeness: new leader {n.Id} (term {c.Term}) lacks committed entry {committed}@{log.CommittedTerm(committed)} (has term {t?.ToString() ?? "none"})");
        }
    }
}
