namespace RaftKv.Storage;

/// <summary>Tunables of a node's durable storage. The defaults suit production; tests shrink them.</summary>
public sealed record StorageOptions
{
    /// <summary>The defaults.</summary>
    public static StorageOptions Default { get; } = new();

    /// <summary>
    /// A WAL segment is closed and a new one started once it would grow past this many bytes (64 MiB).
    /// Compaction deletes whole segments, so this is also the granularity at which disk space is returned.
    /// </summary>
    public long SegmentSize { get; init; } = 64L << 20;

    /// <summary>Payload bytes of the most recent entries kept in memory; older entries are read back from the segments (64 MiB).</summary>
    public long EntryCacheBytes { get; init; } = 64L << 20;

    /// <summary>Encoded records are gathered in memory and handed to the OS in writes of up to this many bytes (or at <c>Sync</c>).</summary>
    public int WriteBufferBytes { get; init; } = 1 << 20;

    /// <summary>
    /// The WAL's active segment reserves disk space ahead of its writes in steps of this many bytes (4 MiB; never past
    /// <see cref="SegmentSize"/>), and writes zeros a little ahead of its records inside it, so that a sync seldom has
    /// to record more than the data; 0 turns both off. (Measured on ext4. On a copy-on-write filesystem such as btrfs
    /// the zeros likely save nothing and add writes: turn it off there.)
    /// </summary>
    public long PreallocateBytes { get; init; } = 4L << 20;

    /// <summary>How many snapshots the store keeps (the newest ones); at least 1. Default 2, as hraftd.</summary>
    public int SnapshotsRetained { get; init; } = 2;

    internal void Validate()
    {
        if (SegmentSize < 4096) throw new ArgumentOutOfRangeException(nameof(SegmentSize), SegmentSize, "segment size must be at least 4096 bytes");
        if (EntryCacheBytes < 0) throw new ArgumentOutOfRangeException(nameof(EntryCacheBytes), EntryCacheBytes, "must not be negative");
        if (WriteBufferBytes < 4096) throw new ArgumentOutOfRangeException(nameof(WriteBufferBytes), WriteBufferBytes, "must be at least 4096 bytes");
        if (PreallocateBytes < 0) throw new ArgumentOutOfRangeException(nameof(PreallocateBytes), PreallocateBytes, "must not be negative");
        if (SnapshotsRetained < 1) throw new ArgumentOutOfRangeException(nameof(SnapshotsRetained), SnapshotsRetained, "must keep at least one snapshot");
    }
}
