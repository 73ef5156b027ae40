using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using RaftKv.Raft;

namespace RaftKv.Storage.Snapshots;

/// <summary>
/// Layout of a snapshot file, <c>{index:x16}-{term:x16}.snap</c>:
/// <code>
/// header   "RKVSNAP1" | u32 metadata length | metadata: u64 index, u64 term, i32 config length, config | u32 CRC32C(header so far)
/// data     the state machine's bytes, streamed
/// trailer  u64 data length | u32 CRC32C(data) | u32 CRC32C(these 12 bytes) | "RKVSEND1"
/// </code>
/// The trailer is written last, so a file without a valid trailer was never completed.
/// </summary>
internal static class SnapshotFile
{
    public const string Extension = ".snap";
    public const int TrailerSize = 8 + 4 + 4 + 8;
    private static readonly byte[] HeaderMagic = Encoding.ASCII.GetBytes("RKVSNAP1");
    private static readonly byte[] TrailerMagic = Encoding.ASCII.GetBytes("RKVSEND1");

    public static string FileName(SnapshotMetadata meta) =>
        meta.Index.ToString("x16", CultureInfo.InvariantCulture) + "-" + meta.Term.ToString("x16", CultureInfo.InvariantCulture) + Extension;

    public static bool TryParseName(string fileName, out ulong index, out ulong term)
    {
        index = term = 0;
        if (fileName.Length != 16 + 1 + 16 + Extension.Length || !fileName.EndsWith(Extension, StringComparison.Ordinal) || fileName[16] != '-') return false;
        return ulong.TryParse(fileName.AsSpan(0, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out index)
               && ulong.TryParse(fileName.AsSpan(17, 16), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out term);
    }

    public static byte[] EncodeHeader(SnapshotMetadata meta)
    {
        var config = meta.Config.Encode();
        var metaLength = 8 + 8 + 4 + config.Length;
        var header = new byte[8 + 4 + metaLength + 4];
        HeaderMagic.CopyTo(header, 0);
        var s = header.AsSpan();
        BinaryPrimitives.WriteInt32LittleEndian(s[8..], metaLength);
        BinaryPrimitives.WriteUInt64LittleEndian(s[12..], meta.Index);
        BinaryPrimitives.WriteUInt64LittleEndian(s[20..], meta.Term);
        BinaryPrimitives.WriteInt32LittleEndian(s[28..], config.Length);
        config.CopyTo(s[32..]);
        BinaryPrimitives.WriteUInt32LittleEndian(s[^4..], Crc32C.Compute(s[..^4]));
        return header;
    }

    public static byte[] EncodeTrailer(long dataLength, uint dataCrc)
    {
        var t = new byte[TrailerSize];
        BinaryPrimitives.WriteInt64LittleEndian(t, dataLength);
        BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(8), dataCrc);
        BinaryPrimitives.WriteUInt32LittleEndian(t.AsSpan(12), Crc32C.Compute(t.AsSpan(0, 12)));
        TrailerMagic.CopyTo(t, 16);
        return t;
    }

    /// <summary>Reads and checks the header and trailer of <paramref name="path"/> (not the data).</summary>
    public static SnapshotInfo Inspect(string path)
    {
        using var f = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        var length = RandomAccess.GetLength(f);
        Span<byte> fixedPart = stackalloc byte[12];
        if (length < 12 + 4 + TrailerSize || ReadExactly(f, fixedPart, 0) < 12)
            throw new StorageCorruptException(path, 0, $"snapshot file is {length} bytes, too short to hold a header and a trailer (an incomplete write?)");
        if (!fixedPart[..8].SequenceEqual(HeaderMagic)) throw new StorageCorruptException(path, 0, "not a snapshot file (bad magic)");
        var metaLength = BinaryPrimitives.ReadInt32LittleEndian(fixedPart[8..]);
        if (metaLength < 20 || 12L + metaLength + 4 + TrailerSize > length)
            throw new StorageCorruptException(path, 8, $"bad metadata length {metaLength}");
        var header = new byte[12 + metaLength + 4];
        ReadExactly(f, header, 0);
        if (BinaryPrimitives.ReadUInt32LittleEndian(header.AsSpan(^4)) != Crc32C.Compute(header.AsSpan(0, header.Length - 4)))
            throw new StorageCorruptException(path, 0, "snapshot header checksum mismatch");
        SnapshotMetadata meta;
        try
        {
            var m = header.AsSpan(12, metaLength);
            var index = BinaryPrimitives.ReadUInt64LittleEndian(m);
            var term = BinaryPrimitives.ReadUInt64LittleEndian(m[8..]);
            var configLength = BinaryPrimitives.ReadInt32LittleEndian(m[16..]);
            if (configLength != metaLength - 20) throw new FormatException($"config length {configLength} does not fit metadata length {metaLength}");
            meta = new SnapshotMetadata(index, term, ClusterConfig.Decode(m[20..]));
        }
        catch (FormatException e)
        {
            throw new StorageCorruptException(path, 12, "malformed snapshot metadata: " + e.Message, e);
        }

        var trailer = new byte[TrailerSize];
        var trailerAt = length - TrailerSize;
        ReadExactly(f, trailer, trailerAt);
        if (!trailer.AsSpan(16).SequenceEqual(TrailerMagic) ||
            BinaryPrimitives.ReadUInt32LittleEndian(trailer.AsSpan(12)) != Crc32C.Compute(trailer.AsSpan(0, 12)))
            throw new StorageCorruptException(path, trailerAt, "snapshot trailer missing or damaged (the snapshot was not completely written)");
        var dataLength = BinaryPrimitives.ReadInt64LittleEndian(trailer);
        if (dataLength != trailerAt - header.Length)
            throw new StorageCorruptException(path, trailerAt, $"trailer says {dataLength} data bytes but the file holds {trailerAt - header.Length}");
        var name = Path.GetFileName(path);
        if (TryParseName(name, out var nameIndex, out var nameTerm) && (nameIndex != meta.Index || nameTerm != meta.Term))
            throw new StorageCorruptException(path, 12, $"metadata says {meta.Index}@{meta.Term}, which does not match the file name");
        return new SnapshotInfo(meta, path, dataLength)
        {
            DataOffset = header.Length,
            DataChecksum = BinaryPrimitives.ReadUInt32LittleEndian(trailer.AsSpan(8)),
        };
    }

    /// <summary>Reads the whole data and compares its checksum with the trailer's.</summary>
    public static void VerifyData(SnapshotInfo info)
    {
        using var f = File.OpenHandle(info.FilePath, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
        var buffer = ArrayPool<byte>.Shared.Rent(1 << 20);
        try
        {
            uint crc = 0;
            long done = 0;
            while (done < info.DataLength)
            {
                var want = (int)Math.Min(buffer.Length, info.DataLength - done);
                var n = RandomAccess.Read(f, buffer.AsSpan(0, want), info.DataOffset + done);
                if (n == 0) throw new StorageCorruptException(info.FilePath, info.DataOffset + done, "snapshot file shorter than its trailer says");
                crc = Crc32C.Append(crc, buffer.AsSpan(0, n));
                done += n;
            }
            if (crc != info.DataChecksum) throw ChecksumMismatch(info);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    public static StorageCorruptException ChecksumMismatch(SnapshotInfo info) =>
        new(info.FilePath, info.DataOffset,
            $"snapshot data checksum mismatch over bytes [{info.DataOffset}, {info.DataOffset + info.DataLength}) (the data was damaged after it was written)");

    private static int ReadExactly(Microsoft.Win32.SafeHandles.SafeFileHandle f, Span<byte> into, long at)
    {
        var done = 0;
        while (done < into.Length)
        {
            var n = RandomAccess.Read(f, into[done..], at + done);
            if (n == 0) break;
            done += n;
        }
        return done;
    }
}
