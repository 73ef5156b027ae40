namespace RaftKv.Raft;

/// <summary>What a log entry carries.</summary>
public enum EntryType : byte
{
    /// <summary>An application command (an empty one is the leader's no-op).</summary>
    Normal = 0,

    /// <summary>A complete cluster configuration (see <see cref="ClusterConfig"/>), effective as soon as it is appended.</summary>
    Configuration = 1,
}

/// <summary>
/// One entry of the replicated log. A value type so that logs and message batches are flat arrays:
/// the hot path allocates nothing per entry beyond the caller's payload.
/// </summary>
public readonly record struct Entry(ulong Index, ulong Term, EntryType Type, ReadOnlyMemory<byte> Data)
{
    /// <summary>Bytes an entry is counted as when sizing messages and batches (payload plus fixed framing).</summary>
    public long Size => Data.Length + 24;

    /// <inheritdoc />
    public override string ToString() => $"{Index}@{Term}:{Type}({Data.Length}B)";
}
