using RaftKv.Node.Transport;

namespace RaftKv.Node;

/// <summary>
/// The sizes a write must fit, derived in one place from the transport's frame limit. An entry reaches followers inside
/// an Append message and a message travels in one frame, so the largest entry a cluster can replicate is the frame minus
/// the Append's own fields. A write larger than that is refused when proposed (<see cref="NodeErrorKind.TooLarge"/>):
/// once in the log it could never be sent, and the follower waiting for it would never advance again.
/// </summary>
public static class EntryLimits
{
    /// <summary>
    /// Bytes reserved in a frame for everything but one entry's data: an Append's type, flags, six varints, entry count
    /// and entry header (about 60 bytes) plus two node ids of up to <see cref="NodeIds.MaxBytes"/> each. 4 KiB covers
    /// them with room to spare, and also a forwarded call's fields around the same command.
    /// </summary>
    public const int FrameReserveBytes = 4096;

    /// <summary>Bytes a one-pair write adds to its key and value in the log (command type, pair count, two lengths).</summary>
    public const int SinglePairOverheadBytes = 13;

    /// <summary>The Append batch budget when the frame allows it (more entries per message buy little beyond this).</summary>
    public const long PreferredBatchBytes = 1L << 20;

    /// <summary>The smallest frame a node accepts: room for the reserve and entries at least as large again.</summary>
    public const int MinFrameSize = 2 * FrameReserveBytes;

    /// <summary>Largest log entry (command bytes) a cluster whose frames are <paramref name="maxFrameSize"/> bytes can replicate.</summary>
    public static long MaxEntryBytes(int maxFrameSize) => maxFrameSize - FrameReserveBytes;

    /// <summary>Largest value a one-key write with a key of <paramref name="keyBytes"/> UTF-8 bytes may carry.</summary>
    public static long MaxValueBytes(int maxFrameSize, int keyBytes) => MaxEntryBytes(maxFrameSize) - keyBytes - SinglePairOverheadBytes;

    /// <summary>
    /// Byte budget of the entries batched into one Append (the core's MaxSizePerMessage). Several entries of up to the
    /// budget, each encoded with a few bytes more than the core counts for it, must still fit one frame, so the budget is
    /// at most half of what the frame leaves for data.
    /// </summary>
    public static long AppendBatchBytes(int maxFrameSize) => Math.Min(PreferredBatchBytes, MaxEntryBytes(maxFrameSize) / 2);

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> for a frame too small to carry entries.</summary>
    public static void ValidateFrameSize(int maxFrameSize)
    {
        if (maxFrameSize < MinFrameSize)
        {
            throw new ArgumentOutOfRangeException(nameof(maxFrameSize), maxFrameSize,
                $"the transport's frame limit must be at least {MinFrameSize} bytes ({FrameReserveBytes} are reserved for message fields)");
        }
    }

    /// <summary>The refusal for a command of <paramref name="bytes"/> bytes, or null when it fits.</summary>
    internal static NodeException? Check(long bytes, int maxFrameSize)
    {
        var max = MaxEntryBytes(maxFrameSize);
        return bytes <= max
            ? null
            : new NodeException(NodeErrorKind.TooLarge,
                $"the write takes {bytes} bytes in the log, above the largest entry this cluster can replicate ({max} bytes: the {maxFrameSize}-byte raft frame less {FrameReserveBytes} for message fields); split it into smaller writes");
    }
}
