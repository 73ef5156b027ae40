namespace RaftKv.Raft;

/// <summary>
/// What the core knows of a snapshot: the last log entry it covers and the configuration at that entry.
/// The state machine's bytes never pass through the core; the runtime stores and streams them.
/// </summary>
/// <param name="Index">Index of the last entry the snapshot covers (0: no snapshot).</param>
/// <param name="Term">Term of that entry.</param>
/// <param name="Config">The cluster configuration as of <paramref name="Index"/>.</param>
public sealed record SnapshotMetadata(ulong Index, ulong Term, ClusterConfig Config)
{
    /// <summary>No snapshot.</summary>
    public static SnapshotMetadata Empty { get; } = new(0, 0, ClusterConfig.Empty);

    /// <summary>True when this is <see cref="Empty"/>.</summary>
    public bool IsEmpty => Index == 0;
}
