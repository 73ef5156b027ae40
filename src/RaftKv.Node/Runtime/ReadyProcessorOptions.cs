namespace RaftKv.Node.Runtime;

/// <summary>What the <see cref="ReadyProcessor"/> needs of a node's options (raftkvd's come from <see cref="NodeOptions"/>).</summary>
internal sealed record ReadyProcessorOptions
{
    public required string Id { get; init; }

    /// <summary>This life of the node's storage (<see cref="RaftKv.Raft.Member.Incarnation"/>).</summary>
    public ulong Incarnation { get; init; }

    /// <summary>Entries applied since the last snapshot that make a new one due (see ReadyProcessor.Snapshots.cs).</summary>
    public int SnapshotThreshold { get; init; } = 8192;

    /// <summary>Entries kept in the log behind a snapshot.</summary>
    public int TrailingLogs { get; init; } = 10240;

    /// <summary>How often a snapshot is taken if anything was applied since the last (TimeSpan.MaxValue: never by time).</summary>
    public TimeSpan SnapshotInterval { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>How long automatic snapshots pause after one fails.</summary>
    public TimeSpan SnapshotRetryDelay { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>A background flush taking longer than this is waited for (the election timeout: see WaitForStuckSync).</summary>
    public TimeSpan StuckSyncTimeout { get; init; } = TimeSpan.FromSeconds(1);

    public static ReadyProcessorOptions From(NodeOptions options, ulong incarnation) => new()
    {
        Id = options.Id,
        Incarnation = incarnation,
        SnapshotThreshold = options.SnapshotThreshold,
        TrailingLogs = options.TrailingLogs,
        SnapshotInterval = options.SnapshotInterval,
        StuckSyncTimeout = options.ElectionTimeout,
    };
}
