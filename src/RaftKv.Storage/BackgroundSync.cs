using RaftKv.Raft;
using RaftKv.Storage.Wal;

namespace RaftKv.Storage;

/// <summary>
/// A sync of <see cref="FileLogStorage"/> split off its owner's thread (see <see cref="FileLogStorage.BeginSync"/>):
/// the device flush of the segment that was active when it began, which is the only one that can hold unflushed
/// writes (a segment is flushed when it is rolled).
/// </summary>
public sealed class BackgroundSync : IBackgroundSync
{
    private readonly Segment _segment;
    private volatile bool _flushed;

    internal BackgroundSync(Segment segment, ulong obsoleteBefore)
    {
        _segment = segment;
        ObsoleteBefore = obsoleteBefore;
        Position = segment.Length;
    }

    /// <summary>The segment this sync flushes.</summary>
    internal Segment Segment => _segment;

    /// <summary>Where that segment's records ended when the sync began: what the flush makes durable.</summary>
    internal long Position { get; }

    /// <summary>Segments before this sequence number were obsolete when the sync began.</summary>
    internal ulong ObsoleteBefore { get; }

    internal bool Flushed => _flushed;

    /// <inheritdoc />
    /// <remarks>An fdatasync of the segment; it covers every sync begun before it on the same segment.</remarks>
    public void Flush()
    {
        Durable.FlushData(_segment.Handle);
        _flushed = true;
    }

    /// <inheritdoc />
    public void CoveredBy(IBackgroundSync newer)
    {
        ArgumentNullException.ThrowIfNull(newer);
        if (newer is not BackgroundSync { _flushed: true }) throw new InvalidOperationException("the newer sync has not been flushed");
        _flushed = true;
    }
}
