using RaftKv.Raft;

namespace RaftKv.Storage.Snapshots;

/// <summary>A snapshot file in the store whose header and trailer are intact (its data checksum is checked when read).</summary>
/// <param name="Metadata">Last included index and term, and the cluster configuration at that index.</param>
/// <param name="FilePath">The file.</param>
/// <param name="DataLength">Bytes of state-machine data it holds.</param>
public sealed record SnapshotInfo(SnapshotMetadata Metadata, string FilePath, long DataLength)
{
    /// <summary>Where the data starts in the file.</summary>
    internal long DataOffset { get; init; }

    /// <summary>CRC32C of the data, from the trailer.</summary>
    internal uint DataChecksum { get; init; }

    /// <inheritdoc />
    public override string ToString() => $"snapshot {Metadata.Index}@{Metadata.Term} ({DataLength} bytes, {Path.GetFileName(FilePath)})";
}
