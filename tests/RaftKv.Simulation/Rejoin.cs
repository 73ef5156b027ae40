namespace RaftKv.Simulation;

/// <summary>Where a wiped node is on its way back: the steps raftkvd's join handler takes on the leader.</summary>
public enum RejoinStage
{
    /// <summary>The configuration still names its previous incarnation: replace it by the new one as a non-voter.</summary>
    Replace,

    /// <summary>A non-voter of the new incarnation: wait until it holds what the leader had committed, then promote it.</summary>
    CatchUp,
}

/// <summary>
/// A node that lost its storage and must get back into the cluster as its new incarnation. The simulator plays the
/// join handler: each poll it reads the current leader's configuration (proposals get lost with leader changes, so
/// the configuration, not an accepted proposal, says how far the join got), proposes the next change, and retries
/// on refusal.
/// </summary>
/// <param name="id">The wiped node.</param>
/// <param name="incarnation">Its new incarnation.</param>
/// <param name="asVoter">Whether it was a voter before: it comes back as one, a non-voter otherwise.</param>
/// <param name="since">When it was wiped (time units).</param>
public sealed class Rejoin(string id, ulong incarnation, bool asVoter, long since)
{
    public string Id { get; } = id;
    public ulong Incarnation { get; } = incarnation;
    public bool AsVoter { get; } = asVoter;
    public long Since { get; } = since;

    public RejoinStage Stage { get; set; } = RejoinStage.Replace;

    /// <summary>The leader's commit index when the catch-up wait began under <see cref="TargetLeader"/> in <see cref="TargetTerm"/>.</summary>
    public ulong Target { get; set; }

    public string? TargetLeader { get; set; }
    public ulong TargetTerm { get; set; }

    /// <summary>Changes the leader refused (another change in progress, a leader too new, not the leader any more).</summary>
    public int Refusals { get; set; }

    public override string ToString() =>
        $"rejoin of {Id} as {(AsVoter ? "voter" : "non-voter")} {RaftKv.Raft.Incarnations.Format(Incarnation)}: {Stage}, target {Target}, {Refusals} refusals, since t={Since}";
}
