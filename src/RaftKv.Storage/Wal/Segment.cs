using System.Globalization;
using Microsoft.Win32.SafeHandles;

namespace RaftKv.Storage.Wal;

/// <summary>
/// One WAL segment file, named <c>{seq:x16}-{firstIndex:x16}.wal</c>: its sequence number (consecutive, so a missing
/// file is noticed) and the index the next entry had when it was started, so compaction can tell from the names alone
/// which files hold only old entries. Only the newest segment is written; older ones stay open for reads.
/// </summary>
internal sealed class Segment : IDisposable
{
    public const string Extension = ".wal";

    private Segment(string path, ulong seq, ulong firstIndex, SafeFileHandle handle, long fileSize)
    {
        FilePath = path;
        Seq = seq;
        FirstIndex = firstIndex;
        Handle = handle;
        Length = fileSize;
        FileSize = fileSize;
    }

    private bool _cannotReserve;

    public string FilePath { get; }

    public ulong Seq { get; }

    public ulong FirstIndex { get; }

    public SafeFileHandle Handle { get; }

    /// <summary>
    /// Where the next record goes: the end of the records handed to the OS. The file may be longer, the rest zeros
    /// reserved ahead of the writes (see <see cref="Write"/>); recovery sets this to where the records end.
    /// </summary>
    public long Length { get; set; }

    /// <summary>The file's size: <see cref="Length"/> plus the zeros reserved after it.</summary>
    public long FileSize { get; set; }

    /// <summary>Written since the last flush to the device.</summary>
    public bool Dirty { get; set; }

    /// <summary>How far a completed flush to the device is known to cover (in memory; what was flushed, not yet marked).</summary>
    public long SyncedTo { get; set; }

    /// <summary>The highest position a <c>Synced</c> record in this file names (or the header's end: headers are durable).</summary>
    public long MarkedTo { get; set; }

    /// <summary>
    /// The segment's format records its syncs (version 2 on): recovery may then drop an unsynced tail with a hole in it.
    /// Version 1 segments carry no marks, so recovery cannot tell an unsynced hole there from damage and treats every
    /// hole with valid records after it as damage.
    /// </summary>
    public bool MarksSyncs { get; set; }

    public static string FileName(ulong seq, ulong firstIndex) =>
        seq.ToString("x16", CultureInfo.InvariantCulture) + "-" + firstIndex.ToString("x16", CultureInfo.InvariantCulture) + Extension;

    public static bool TryParseName(string fileName, out ulong seq, out ulong firstIndex)
    {
        seq = firstIndex = 0;
        if (fileName.Length != 16 + 1 + 16 + Extension.Length || !fileName.EndsWith(Extension, StringComparison.Ordinal) || fileName[16] != '-') return false;
        return ulong.TryParse(fileName.AsSpan(0, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out seq)
               && ulong.TryParse(fileName.AsSpan(17, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out firstIndex);
    }

    /// <summary>Opens an existing segment for reading and (if it becomes the active one) appending.</summary>
    public static Segment OpenExisting(string path, ulong seq, ulong firstIndex)
    {
        var handle = File.OpenHandle(path, FileMode.Open, FileAccess.ReadWrite, FileShare.Read);
        return new Segment(path, seq, firstIndex, handle, RandomAccess.GetLength(handle));
    }

    /// <summary>
    /// Creates a segment durably: the header is written to a temporary file, flushed, and renamed into place, and the
    /// directory is flushed. So a segment file either does not exist or begins with a durable header.
    /// </summary>
    public static Segment Create(string directory, in SegmentHeader header)
    {
        var path = Path.Combine(directory, FileName(header.Seq, header.FirstIndex));
        var tmp = path + ".tmp";
        var bytes = WalRecord.EncodeHeader(header);
        using (var h = File.OpenHandle(tmp, FileMode.Create, FileAccess.ReadWrite, FileShare.None))
        {
            RandomAccess.Write(h, bytes, 0);
            Durable.FlushData(h);
        }
        File.Move(tmp, path, overwrite: true);
        Durable.FlushDirectory(directory);
        var segment = OpenExisting(path, header.Seq, header.FirstIndex);
        segment.SyncedTo = segment.MarkedTo = bytes.Length;
        segment.MarksSyncs = true;
        return segment;
    }

    /// <summary>
    /// Zeros are written this far ahead of the records, inside the reserved space (see <see cref="Write"/>): far enough
    /// that most syncs find their blocks already written, small enough that no single sync has to flush a large step
    /// of zeros (figures: docs/measurements.md).
    /// </summary>
    internal const int ZeroAheadBytes = 64 << 10;

    private static readonly byte[] s_zeros = new byte[ZeroAheadBytes];

    // The end of the zeros written ahead of the records (0 when none are known to be).
    private long _zeroedTo;

    /// <summary>
    /// Writes at <see cref="Length"/>. Writes that would grow the file first reserve space for the next
    /// <paramref name="reserveAhead"/> bytes (0: never), so that most fdatasyncs find the file's size unchanged. Zeros
    /// are also written over the reserved space a little ahead of the records (<see cref="ZeroAheadBytes"/>): fallocate
    /// leaves its extents unwritten, and ext4 then marks them written, and writes the inode, at every sync that
    /// reaches them; written ahead, a sync finds nothing to record but the data, once per chunk. Where reserving is not
    /// supported the segment stops trying and simply appends.
    /// </summary>
    public void Write(ReadOnlySpan<byte> data, long reserveAhead)
    {
        var end = Length + data.Length;
        if (end > FileSize && reserveAhead > 0 && !_cannotReserve)
        {
            var size = Math.Max(end, FileSize + reserveAhead);
            if (Durable.TryPreallocate(Handle, size)) FileSize = size;
            else _cannotReserve = true;
        }
        if (reserveAhead > 0 && !_cannotReserve && end > _zeroedTo)
        {
            // From the end of this write (never under it: that would write it twice), and never past the reserved space
            // (which reaches at least to the end of this write: reserving succeeded).
            var to = Math.Min(FileSize, end + ZeroAheadBytes);
            if (to > end) RandomAccess.Write(Handle, s_zeros.AsSpan(0, (int)(to - end)), end);
            _zeroedTo = to;
        }
        RandomAccess.Write(Handle, data, Length);
        FileSize = Math.Max(FileSize, end);
        Length += data.Length;
        Dirty = true;
    }

    /// <summary>Cuts the file back to its records, giving back the space reserved after them (before a final flush).</summary>
    public void ReleaseReserved()
    {
        if (FileSize <= Length) return;
        RandomAccess.SetLength(Handle, Length);
        FileSize = Length;
        Dirty = true;
    }

    public void Flush()
    {
        if (!Dirty) return;
        Durable.FlushData(Handle);
        Dirty = false;
        SyncedTo = Length;
    }

    public void Dispose() => Handle.Dispose();

    public override string ToString() => Path.GetFileName(FilePath);
}
