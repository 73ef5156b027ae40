using System.Buffers.Binary;
using System.Text;
using RaftKv.Raft;

namespace RaftKv.Storage.Wal;

/// <summary>What a WAL record says. The numbers are part of the on-disk format: never renumber.</summary>
internal enum RecordKind : byte
{
    /// <summary>First record of every segment: the whole log state when the segment was started.</summary>
    Header = 1,
    /// <summary>One log entry.</summary>
    Entry = 2,
    /// <summary>A new hard state.</summary>
    HardState = 3,
    /// <summary>Entries from an index on are dropped (a leader overwrote them); entries that follow restart there.</summary>
    Truncate = 4,
    /// <summary>A snapshot was taken locally (SetSnapshot).</summary>
    Snapshot = 5,
    /// <summary>A snapshot from the leader replaced the whole log (InstallSnapshot).</summary>
    InstallSnapshot = 6,
    /// <summary>Entries up to an index were dropped (Compact); carries that index's term.</summary>
    Compact = 7,
    /// <summary>
    /// The bytes of this segment before a position were flushed to the device before this record was written: the
    /// durable high-water mark recovery needs to tell a power loss's out-of-order tail from damage to synced records.
    /// </summary>
    Synced = 8,
}

/// <summary>
/// The WAL's record framing and payload codec.
/// <code>
/// frame:   u32 length of payload | u32 CRC32C(length field) | u32 CRC32C(payload) | payload
/// payload: u8 kind | fields (little-endian)
///   Header          u32 version, u64 seq, u64 firstIndex (next entry index), u64 offset (FirstIndex-1), u64 offsetTerm, hardState, snapshot
///   Entry           u64 index, u64 term, u8 type, data (rest of the payload)
///   HardState       hardState = u64 term, u64 commit, i32 votedFor length (-1: null), UTF-8 votedFor
///   Truncate        u64 fromIndex
///   Snapshot        snapshot = u64 index, u64 term, i32 config length, config (ClusterConfig.Encode)
///   InstallSnapshot snapshot
///   Compact         u64 index, u64 term
///   Synced          u64 position (in this segment; written before the first record after a sync completes)
/// </code>
/// The length has its own checksum so that a damaged length is told apart from a damaged payload, which lets recovery
/// step over a bad record and see whether valid records follow it (corruption) or not (a torn tail).
/// </summary>
internal static class WalRecord
{
    public const int FrameHeaderSize = 12;
    /// <summary>
    /// Version written in new segment headers. 2: the segment carries <see cref="RecordKind.Synced"/> marks, so
    /// recovery may drop an unsynced tail with a hole in it. Version 1 segments (no marks) are still read, strictly.
    /// </summary>
    public const int FormatVersion = 2;

    /// <summary>Oldest segment format this build reads.</summary>
    public const int OldestFormatVersion = 1;

    /// <summary>Size of a <see cref="RecordKind.Synced"/> frame.</summary>
    public const int SyncedFrameSize = FrameHeaderSize + 1 + 8;

    /// <summary>Largest payload a record may have (an entry of up to 1 GiB minus its fields).</summary>
    public const int MaxPayload = 1 << 30;

    /// <summary>Payload bytes of an entry record besides its data: kind, index, term, type.</summary>
    public const int EntryFields = 1 + 8 + 8 + 1;

    public static int EntryFrameSize(int dataLength) => FrameHeaderSize + EntryFields + dataLength;

    /// <summary>Writes an entry record at the start of <paramref name="dest"/> and returns its size.</summary>
    public static int WriteEntry(Span<byte> dest, in Entry e)
    {
        var data = e.Data.Span;
        var payloadLength = EntryFields + data.Length;
        var p = dest.Slice(FrameHeaderSize, payloadLength);
        p[0] = (byte)RecordKind.Entry;
        BinaryPrimitives.WriteUInt64LittleEndian(p[1..], e.Index);
        BinaryPrimitives.WriteUInt64LittleEndian(p[9..], e.Term);
        p[17] = (byte)e.Type;
        data.CopyTo(p[EntryFields..]);
        Seal(dest, payloadLength);
        return FrameHeaderSize + payloadLength;
    }

    public static int HardStateSize(in HardState hs) => 8 + 8 + 4 + (hs.VotedFor is null ? 0 : Encoding.UTF8.GetByteCount(hs.VotedFor));

    public static int SnapshotSize(byte[] config) => 8 + 8 + 4 + config.Length;

    public static byte[] EncodeHardState(HardState hs) => Frame(RecordKind.HardState, HardStateSize(hs), (ref PayloadWriter w) => w.HardState(hs));

    public static byte[] EncodeTruncate(ulong from) => Frame(RecordKind.Truncate, 8, (ref PayloadWriter w) => w.U64(from));

    /// <summary>Writes a <see cref="RecordKind.Synced"/> record at the start of <paramref name="dest"/> (allocation-free: it is written after every sync).</summary>
    public static int WriteSynced(Span<byte> dest, long position)
    {
        var p = dest.Slice(FrameHeaderSize, 1 + 8);
        p[0] = (byte)RecordKind.Synced;
        BinaryPrimitives.WriteInt64LittleEndian(p[1..], position);
        Seal(dest, 1 + 8);
        return SyncedFrameSize;
    }

    public static byte[] EncodeCompact(ulong index, ulong term) => Frame(RecordKind.Compact, 16, (ref PayloadWriter w) =>
    {
        w.U64(index);
        w.U64(term);
    });

    public static byte[] EncodeSnapshot(RecordKind kind, SnapshotMetadata meta)
    {
        var config = meta.Config.Encode();
        return Frame(kind, SnapshotSize(config), (ref PayloadWriter w) => w.Snapshot(meta, config));
    }

    /// <summary>Encodes a segment header; <paramref name="version"/> other than the current one is for tests of older files.</summary>
    public static byte[] EncodeHeader(in SegmentHeader h, int version = FormatVersion)
    {
        var config = h.Snapshot.Config.Encode();
        var hs = h.HardState;
        var header = h;
        return Frame(RecordKind.Header, 4 + 8 * 4 + HardStateSize(hs) + SnapshotSize(config), (ref PayloadWriter w) =>
        {
            w.U32((uint)version);
            w.U64(header.Seq);
            w.U64(header.FirstIndex);
            w.U64(header.Offset);
            w.U64(header.OffsetTerm);
            w.HardState(header.HardState);
            w.Snapshot(header.Snapshot, config);
        });
    }

    private delegate void Fill(ref PayloadWriter w);

    private static byte[] Frame(RecordKind kind, int fieldsLength, Fill fill)
    {
        var payloadLength = 1 + fieldsLength;
        var buffer = new byte[FrameHeaderSize + payloadLength];
        buffer[FrameHeaderSize] = (byte)kind;
        var w = new PayloadWriter(buffer.AsSpan(FrameHeaderSize + 1));
        fill(ref w);
        if (w.Position != fieldsLength) throw new InvalidOperationException($"record {kind}: wrote {w.Position} bytes, expected {fieldsLength}");
        Seal(buffer, payloadLength);
        return buffer;
    }

    private static void Seal(Span<byte> frame, int payloadLength)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)payloadLength);
        BinaryPrimitives.WriteUInt32LittleEndian(frame[4..], Crc32C.Compute(frame[..4]));
        BinaryPrimitives.WriteUInt32LittleEndian(frame[8..], Crc32C.Compute(frame.Slice(FrameHeaderSize, payloadLength)));
    }

    /// <summary>Checks the frame starting at <paramref name="buffer"/>[0]; on <see cref="FrameStatus.Ok"/> gives its payload length.</summary>
    public static FrameStatus CheckFrame(ReadOnlySpan<byte> buffer, out int payloadLength)
    {
        payloadLength = 0;
        if (buffer.Length < FrameHeaderSize) return FrameStatus.Incomplete;
        var length = BinaryPrimitives.ReadUInt32LittleEndian(buffer);
        if (BinaryPrimitives.ReadUInt32LittleEndian(buffer[4..]) != Crc32C.Compute(buffer[..4])) return FrameStatus.BadHeader;
        if (length == 0 || length > MaxPayload) return FrameStatus.BadHeader;
        payloadLength = (int)length;
        if (buffer.Length - FrameHeaderSize < payloadLength) return FrameStatus.Incomplete;
        var crc = BinaryPrimitives.ReadUInt32LittleEndian(buffer[8..]);
        return crc == Crc32C.Compute(buffer.Slice(FrameHeaderSize, payloadLength)) ? FrameStatus.Ok : FrameStatus.BadChecksum;
    }

    /// <summary>
    /// Looks for complete, valid frames at any byte from <paramref name="from"/> on (after damage, record boundaries are
    /// unknown): how many there are, and the highest position a <see cref="RecordKind.Synced"/> record among them names
    /// (-1: none). Recovery uses the latter to tell a hole a sync had covered (damage) from an unsynced one (power loss).
    /// </summary>
    public static (int Records, long HighestSynced) ScanValidFrames(ReadOnlySpan<byte> buffer, int from)
    {
        var records = 0;
        var highest = -1L;
        var q = from;
        while (q <= buffer.Length - FrameHeaderSize)
        {
            // A run of 8+ zero bytes cannot start a frame (length 0 is invalid); skip such runs quickly.
            if (buffer[q] == 0)
            {
                var nonZero = buffer[q..].IndexOfAnyExcept((byte)0);
                if (nonZero < 0) break;
                if (nonZero > 8)
                {
                    q += nonZero - 7;
                    continue;
                }
            }
            if (CheckFrame(buffer[q..], out var payloadLength) == FrameStatus.Ok)
            {
                records++;
                var payload = buffer.Slice(q + FrameHeaderSize, payloadLength);
                if (payload[0] == (byte)RecordKind.Synced && payload.Length == 1 + 8)
                    highest = Math.Max(highest, (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(payload[1..]), long.MaxValue));
                q += FrameHeaderSize + payloadLength;
                continue;
            }
            q++;
        }
        return (records, highest);
    }

    /// <summary>Decodes a payload whose checksum was verified; throws <see cref="FormatException"/> if its fields make no sense.</summary>
    public static DecodedRecord Decode(ReadOnlySpan<byte> payload)
    {
        var r = new PayloadReader(payload[1..]);
        var rec = new DecodedRecord { Kind = (RecordKind)payload[0] };
        switch (rec.Kind)
        {
            case RecordKind.Header:
                var version = r.U32();
                if (version is < OldestFormatVersion or > FormatVersion)
                    throw new FormatException($"unsupported WAL format version {version} (this build reads {OldestFormatVersion} to {FormatVersion})");
                rec.Version = (int)version;
                rec.Header = new SegmentHeader(r.U64(), r.U64(), r.U64(), r.U64(), r.HardState(), r.Snapshot());
                break;
            case RecordKind.Entry:
                rec.Index = r.U64();
                rec.Term = r.U64();
                var type = r.U8();
                if (type > (byte)EntryType.Configuration) throw new FormatException($"unknown entry type {type}");
                rec.EntryType = (EntryType)type;
                return rec; // data: the rest of the payload
            case RecordKind.HardState:
                rec.HardState = r.HardState();
                break;
            case RecordKind.Truncate:
                rec.Index = r.U64();
                break;
            case RecordKind.Snapshot:
            case RecordKind.InstallSnapshot:
                rec.Snapshot = r.Snapshot();
                break;
            case RecordKind.Compact:
                rec.Index = r.U64();
                rec.Term = r.U64();
                break;
            case RecordKind.Synced:
                var position = r.U64();
                if (position > int.MaxValue) throw new FormatException($"synced position {position} beyond any segment");
                rec.Position = (long)position;
                break;
            default:
                throw new FormatException($"unknown record kind {payload[0]}");
        }
        if (!r.AtEnd) throw new FormatException($"trailing bytes after a {rec.Kind} record");
        return rec;
    }

    /// <summary>Reads back an entry from its verified payload (copying the data).</summary>
    public static Entry DecodeEntry(ReadOnlySpan<byte> payload)
    {
        var rec = Decode(payload);
        if (rec.Kind != RecordKind.Entry) throw new FormatException($"expected an entry record, found {rec.Kind}");
        return new Entry(rec.Index, rec.Term, rec.EntryType, payload[EntryFields..].ToArray());
    }

    private ref struct PayloadWriter(Span<byte> span)
    {
        private readonly Span<byte> _span = span;
        public int Position;

        public void U32(uint v)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(_span[Position..], v);
            Position += 4;
        }

        public void U64(ulong v)
        {
            BinaryPrimitives.WriteUInt64LittleEndian(_span[Position..], v);
            Position += 8;
        }

        public void Bytes(ReadOnlySpan<byte> b)
        {
            BinaryPrimitives.WriteInt32LittleEndian(_span[Position..], b.Length);
            b.CopyTo(_span[(Position + 4)..]);
            Position += 4 + b.Length;
        }

        public void HardState(in HardState hs)
        {
            U64(hs.Term);
            U64(hs.Commit);
            if (hs.VotedFor is null)
            {
                BinaryPrimitives.WriteInt32LittleEndian(_span[Position..], -1);
                Position += 4;
            }
            else
            {
                Bytes(Encoding.UTF8.GetBytes(hs.VotedFor));
            }
        }

        public void Snapshot(SnapshotMetadata meta, byte[] config)
        {
            U64(meta.Index);
            U64(meta.Term);
            Bytes(config);
        }
    }

    private ref struct PayloadReader(ReadOnlySpan<byte> span)
    {
        private readonly ReadOnlySpan<byte> _span = span;
        private int _pos;

        public readonly bool AtEnd => _pos == _span.Length;

        private void Need(int n)
        {
            if (_span.Length - _pos < n) throw new FormatException("record payload too short");
        }

        public byte U8()
        {
            Need(1);
            return _span[_pos++];
        }

        public uint U32()
        {
            Need(4);
            var v = BinaryPrimitives.ReadUInt32LittleEndian(_span[_pos..]);
            _pos += 4;
            return v;
        }

        public ulong U64()
        {
            Need(8);
            var v = BinaryPrimitives.ReadUInt64LittleEndian(_span[_pos..]);
            _pos += 8;
            return v;
        }

        private ReadOnlySpan<byte> Bytes(bool nullable, out bool isNull)
        {
            Need(4);
            var n = BinaryPrimitives.ReadInt32LittleEndian(_span[_pos..]);
            _pos += 4;
            isNull = n == -1 && nullable;
            if (isNull) return default;
            if (n < 0) throw new FormatException($"bad length {n}");
            Need(n);
            var b = _span.Slice(_pos, n);
            _pos += n;
            return b;
        }

        public HardState HardState()
        {
            var term = U64();
            var commit = U64();
            var voted = Bytes(nullable: true, out var isNull);
            return new HardState(term, isNull ? null : Encoding.UTF8.GetString(voted), commit);
        }

        public SnapshotMetadata Snapshot()
        {
            var index = U64();
            var term = U64();
            var config = ClusterConfig.Decode(Bytes(nullable: false, out _));
            return index == 0 && term == 0 && config.Members.IsEmpty ? SnapshotMetadata.Empty : new SnapshotMetadata(index, term, config);
        }
    }
}

/// <summary>Outcome of checking one frame.</summary>
internal enum FrameStatus
{
    /// <summary>Length and payload checksums match.</summary>
    Ok,
    /// <summary>The buffer ends before the frame does.</summary>
    Incomplete,
    /// <summary>The length field is damaged (its checksum fails, or it is 0 or absurd).</summary>
    BadHeader,
    /// <summary>The length is sound but the payload's checksum fails.</summary>
    BadChecksum,
}

/// <summary>The whole log state when a segment was started: lets recovery begin at the first segment still on disk.</summary>
/// <param name="Seq">Segment sequence number (consecutive from segment to segment).</param>
/// <param name="FirstIndex">Index the next entry appended had when the segment began (LastIndex + 1).</param>
/// <param name="Offset">FirstIndex - 1 of the log at that time (last compacted or snapshotted index).</param>
/// <param name="OffsetTerm">Term of <paramref name="Offset"/>.</param>
/// <param name="HardState">Hard state at that time.</param>
/// <param name="Snapshot">Snapshot metadata at that time.</param>
internal readonly record struct SegmentHeader(ulong Seq, ulong FirstIndex, ulong Offset, ulong OffsetTerm, HardState HardState, SnapshotMetadata Snapshot);

/// <summary>A decoded record; which fields are set depends on <see cref="Kind"/>.</summary>
internal struct DecodedRecord
{
    public RecordKind Kind;
    public ulong Index;
    public ulong Term;
    public EntryType EntryType;
    public HardState HardState;
    public SnapshotMetadata? Snapshot;
    public SegmentHeader Header;
    /// <summary>Header: the segment's format version.</summary>
    public int Version;
    /// <summary>Synced: the position the record says was flushed.</summary>
    public long Position;
}
