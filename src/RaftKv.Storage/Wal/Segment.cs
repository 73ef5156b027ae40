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
        return OpenExisting(path, header.Seq, header.FirstIndex);
    }

    /// <summary>
    /// Writes at <see cref="Length"/>. Writes that would grow the file first reserve space for the next
    /// <paramref name="reserveAhead"/> bytes (0: never) and write zeros over it, so that most fdatasyncs find nothing
    /// to record but the data: not a new size, and not the reserved extents turning from unwritten to written, which
    /// fallocate alone would leave to every sync (ext4 writes the inode for it). The zeros reach the device with the
    /// next sync, once per step. Where reserving is not supported the segment stops trying and simply appends.
    /// </summary>
    public void Write(ReadOnlySpan<byte> data, long reserveAhead)
    {
        var end = Length + data.Length;
        if (end > FileSize && reserveAhead > 0 && !_cannotReserve)
        {
            var size = Math.Max(end, FileSize + reserveAhead);
            if (Durable.TryPreallocate(Handle, size))
            {
                // Not where the data goes just below: that would be written twice.
                WriteZeros(Math.Max(FileSize, end), size);
                FileSize = size;
            }
            else
            {
                _cannotReserve = true;
            }
        }
        RandomAccess.Write(Handle, data, Length);
        FileSize = Math.Max(FileSize, end);
        Length += data.Length;
        Dirty = true;
    }

    private static readonly byte[] s_zeros = new byte[64 << 10];

    private void WriteZeros(long from, long to)
    {
        for (var at = from; at < to; at += s_zeros.Length)
            RandomAccess.Write(Handle, s_zeros.AsSpan(0, (int)Math.Min(s_zeros.Length, to - at)), at);
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
    }

    public void Dispose() => Handle.Dispose();

    public override string ToString() => Path.GetFileName(FilePath);
}
