using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using RaftKv.Raft;

namespace RaftKv.Node.Transport;

/// <summary>
/// Binary form of a <see cref="Message"/> (the payload of one transport frame).
/// </summary>
/// <remarks>
/// <para>Layout (varint = unsigned LEB128, at most 10 bytes; strings = varint byte count + UTF-8):</para>
/// <code>
/// u8 type | u8 flags (1 reject, 2 transfer, 4 snapshot; other bits zero)
/// string from | string to
/// varint term, logTerm, index, commit, rejectHint, context
/// [flags &amp; 4] varint snapshotIndex, varint snapshotTerm, varint configLength, config (ClusterConfig.Encode)
/// varint entryCount
/// entryCount x (varint index, varint term, u8 entryType, varint dataLength)
/// the entries' data, concatenated, ending exactly at the end of the payload
/// </code>
/// <para>Keeping all entry data in one run at the end lets the decoder copy it into a single array with one copy, each
/// entry's <see cref="Entry.Data"/> a slice of it. Decoding treats its input as hostile: every count and length is checked
/// against the bytes actually left before anything is allocated, so a forged frame costs at most its own size, and any
/// malformed input ends in a <see cref="FormatException"/>.</para>
/// </remarks>
public static class MessageCodec
{
    private const byte FlagReject = 1;
    private const byte FlagTransfer = 2;
    private const byte FlagSnapshot = 4;
    private const byte KnownFlags = FlagReject | FlagTransfer | FlagSnapshot;

    // Smallest encoded entry header (four one-byte fields); bounds the entry count by the bytes present.
    private const int MinEntryHeader = 4;

    // Strict UTF-8 on both sides: an id that does not survive the round trip would silently misroute messages.
    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static readonly MessageType MaxMessageType = Enum.GetValues<MessageType>().Max();

    /// <summary>Bytes <paramref name="message"/> takes when encoded.</summary>
    public static int GetEncodedLength(Message message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return Measure(message, message.Snapshot?.Config.Encode());
    }

    /// <summary>Encodes <paramref name="message"/> into a new array.</summary>
    public static byte[] Encode(Message message)
    {
        ArgumentNullException.ThrowIfNull(message);
        var config = message.Snapshot?.Config.Encode();
        var buffer = new byte[Measure(message, config)];
        EncodeCore(message, config, buffer);
        return buffer;
    }

    /// <summary>Encodes <paramref name="message"/> into <paramref name="destination"/>; returns the bytes written.</summary>
    /// <exception cref="ArgumentException">The destination is shorter than <see cref="GetEncodedLength"/>.</exception>
    public static int Encode(Message message, Span<byte> destination)
    {
        ArgumentNullException.ThrowIfNull(message);
        var config = message.Snapshot?.Config.Encode();
        var length = Measure(message, config);
        if (destination.Length < length) throw new ArgumentException($"destination holds {destination.Length} bytes, the message needs {length}", nameof(destination));
        EncodeCore(message, config, destination[..length]);
        return length;
    }

    /// <summary>Appends the encoding of <paramref name="message"/> to <paramref name="writer"/>; returns the bytes written.</summary>
    public static int Write(Message message, IBufferWriter<byte> writer)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(writer);
        var config = message.Snapshot?.Config.Encode();
        var length = Measure(message, config);
        EncodeCore(message, config, writer.GetSpan(length)[..length]);
        writer.Advance(length);
        return length;
    }

    /// <summary>Appends a transport frame (u32 little-endian length, then the encoded message) to <paramref name="writer"/>; returns the payload length.</summary>
    /// <exception cref="InvalidOperationException">The message is larger than <paramref name="maxFrameSize"/>; nothing was written.</exception>
    public static int WriteFrame(Message message, IBufferWriter<byte> writer, int maxFrameSize)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(writer);
        var config = message.Snapshot?.Config.Encode();
        var length = Measure(message, config);
        if (length > maxFrameSize) throw new InvalidOperationException($"message {message} encodes to {length} bytes, above the {maxFrameSize}-byte frame limit");
        var span = writer.GetSpan(4 + length);
        BinaryPrimitives.WriteUInt32LittleEndian(span, (uint)length);
        EncodeCore(message, config, span.Slice(4, length));
        writer.Advance(4 + length);
        return length;
    }

    /// <summary>Decodes a message encoded by this codec.</summary>
    /// <exception cref="FormatException">The bytes are not exactly one well-formed message.</exception>
    public static Message Decode(ReadOnlySpan<byte> payload) => Decode(payload, null);

    /// <param name="payload">The message's bytes.</param>
    /// <param name="strings">Interns ids that repeat on a connection; null allocates each time.</param>
    /// <param name="fromIncarnation">The sender's incarnation from its connection's handshake, stamped on the message.</param>
    internal static Message Decode(ReadOnlySpan<byte> payload, Utf8StringCache? strings, ulong fromIncarnation = 0)
    {
        var r = new Reader(payload);
        var typeByte = r.Byte();
        if (typeByte > (byte)MaxMessageType) throw new FormatException($"unknown message type {typeByte}");
        var flags = r.Byte();
        if ((flags & ~KnownFlags) != 0) throw new FormatException($"unknown message flags 0x{flags:x2}");
        var from = r.String(strings);
        var to = r.String(strings);
        var term = r.Varint();
        var logTerm = r.Varint();
        var index = r.Varint();
        var commit = r.Varint();
        var rejectHint = r.Varint();
        var context = r.Varint();

        SnapshotMetadata? snapshot = null;
        if ((flags & FlagSnapshot) != 0)
        {
            var snapIndex = r.Varint();
            var snapTerm = r.Varint();
            var config = r.Bytes(r.Length("configuration"));
            snapshot = new SnapshotMetadata(snapIndex, snapTerm, DecodeConfig(config));
        }

        var count = r.Length("entry count");
        ReadOnlyMemory<Entry> entries = default;
        if (count > 0)
        {
            // The count is checked against the bytes left before the array is allocated: a forged count cannot make us
            // allocate more than a few times the frame's own size.
            if (count > r.Remaining / MinEntryHeader) throw new FormatException($"entry count {count} exceeds what {r.Remaining} bytes can hold");
            var array = new Entry[count];
            // Entry lengths are needed again once the single payload array exists; a pooled scratch keeps big batches allocation-free.
            int[]? rented = null;
            var lengths = count <= 256 ? stackalloc int[count] : (rented = ArrayPool<int>.Shared.Rent(count)).AsSpan(0, count);
            try
            {
                long total = 0;
                for (var i = 0; i < count; i++)
                {
                    var entryIndex = r.Varint();
                    var entryTerm = r.Varint();
                    var entryType = r.Byte();
                    if (entryType > (byte)EntryType.Configuration) throw new FormatException($"unknown entry type {entryType}");
                    var length = r.Length("entry data");
                    total += length;
                    lengths[i] = length;
                    array[i] = new Entry(entryIndex, entryTerm, (EntryType)entryType, default);
                }
                if (total != r.Remaining) throw new FormatException($"entries declare {total} data bytes but {r.Remaining} remain");
                if (total > 0)
                {
                    // One array for every payload of the message; each entry's data is a slice of it.
                    var blob = r.Bytes((int)total).ToArray();
                    var offset = 0;
                    for (var i = 0; i < count; i++)
                    {
                        if (lengths[i] > 0) array[i] = array[i] with { Data = new ReadOnlyMemory<byte>(blob, offset, lengths[i]) };
                        offset += lengths[i];
                    }
                }
            }
            finally
            {
                if (rented is not null) ArrayPool<int>.Shared.Return(rented);
            }
            entries = array;
        }
        if (r.Remaining != 0) throw new FormatException($"{r.Remaining} trailing bytes after message");

        return new Message
        {
            Type = (MessageType)typeByte,
            From = from,
            To = to,
            Term = term,
            LogTerm = logTerm,
            Index = index,
            Commit = commit,
            Reject = (flags & FlagReject) != 0,
            Transfer = (flags & FlagTransfer) != 0,
            RejectHint = rejectHint,
            Context = context,
            Snapshot = snapshot,
            Entries = entries,
            FromIncarnation = fromIncarnation,
        };
    }

    // ClusterConfig.Decode bounds its member count by the bytes it is given, so a tiny forged frame cannot ask for a large list.
    private static ClusterConfig DecodeConfig(ReadOnlySpan<byte> config) => ClusterConfig.Decode(config);

    private static int Measure(Message m, byte[]? config)
    {
        long size = 2
            + StringSize(m.From) + StringSize(m.To)
            + VarintSize(m.Term) + VarintSize(m.LogTerm) + VarintSize(m.Index)
            + VarintSize(m.Commit) + VarintSize(m.RejectHint) + VarintSize(m.Context);
        if (m.Snapshot is { } s) size += VarintSize(s.Index) + VarintSize(s.Term) + VarintSize((ulong)config!.Length) + config.Length;
        var entries = m.Entries.Span;
        size += VarintSize((ulong)entries.Length);
        foreach (ref readonly var e in entries)
        {
            size += VarintSize(e.Index) + VarintSize(e.Term) + 1 + VarintSize((ulong)e.Data.Length) + e.Data.Length;
        }
        if (size > int.MaxValue) throw new InvalidOperationException($"message {m} is too large to encode ({size} bytes)");
        return (int)size;
    }

    private static void EncodeCore(Message m, byte[]? config, Span<byte> dest)
    {
        var w = new Writer(dest);
        w.Byte((byte)m.Type);
        w.Byte((byte)((m.Reject ? FlagReject : 0) | (m.Transfer ? FlagTransfer : 0) | (m.Snapshot is null ? 0 : FlagSnapshot)));
        w.String(m.From);
        w.String(m.To);
        w.Varint(m.Term);
        w.Varint(m.LogTerm);
        w.Varint(m.Index);
        w.Varint(m.Commit);
        w.Varint(m.RejectHint);
        w.Varint(m.Context);
        if (m.Snapshot is { } s)
        {
            w.Varint(s.Index);
            w.Varint(s.Term);
            w.Varint((ulong)config!.Length);
            w.Bytes(config);
        }
        var entries = m.Entries.Span;
        w.Varint((ulong)entries.Length);
        foreach (ref readonly var e in entries)
        {
            w.Varint(e.Index);
            w.Varint(e.Term);
            w.Byte((byte)e.Type);
            w.Varint((ulong)e.Data.Length);
        }
        foreach (ref readonly var e in entries) w.Bytes(e.Data.Span);
        if (w.Position != dest.Length) throw new InvalidOperationException("message encoding length mismatch");
    }

    private static int StringSize(string s)
    {
        var n = Utf8.GetByteCount(s);
        return VarintSize((ulong)n) + n;
    }

    internal static int VarintSize(ulong value)
    {
        // 7 payload bits per byte.
        var bits = 64 - ulong.LeadingZeroCount(value | 1);
        return (int)((bits + 6) / 7);
    }

    private ref struct Writer(Span<byte> dest)
    {
        private readonly Span<byte> _dest = dest;
        public int Position;

        public void Byte(byte b) => _dest[Position++] = b;

        public void Varint(ulong value)
        {
            while (value >= 0x80)
            {
                _dest[Position++] = (byte)(value | 0x80);
                value >>= 7;
            }
            _dest[Position++] = (byte)value;
        }

        public void Bytes(ReadOnlySpan<byte> bytes)
        {
            bytes.CopyTo(_dest[Position..]);
            Position += bytes.Length;
        }

        public void String(string s)
        {
            var n = Utf8.GetByteCount(s);
            Varint((ulong)n);
            Position += Utf8.GetBytes(s, _dest[Position..]);
        }
    }

    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _pos;

        public readonly int Remaining => _data.Length - _pos;

        public byte Byte()
        {
            if (_pos >= _data.Length) throw Truncated();
            return _data[_pos++];
        }

        public ulong Varint()
        {
            ulong result = 0;
            for (var shift = 0; shift < 64; shift += 7)
            {
                var b = Byte();
                // The tenth byte may only carry the top bit of a 64-bit value.
                if (shift == 63 && b > 1) throw new FormatException("varint overflows 64 bits");
                result |= (ulong)(b & 0x7F) << shift;
                if (b < 0x80) return result;
            }
            throw new FormatException("varint longer than 10 bytes");
        }

        /// <summary>A varint used as a length or count: it must fit the bytes that are left.</summary>
        public int Length(string what)
        {
            var value = Varint();
            if (value > (ulong)Remaining) throw new FormatException($"{what} {value} exceeds the {Remaining} bytes left");
            return (int)value;
        }

        public ReadOnlySpan<byte> Bytes(int count)
        {
            if (count > Remaining) throw Truncated();
            var span = _data.Slice(_pos, count);
            _pos += count;
            return span;
        }

        public string String(Utf8StringCache? cache)
        {
            var bytes = Bytes(Length("string length"));
            if (bytes.IsEmpty) return "";
            try
            {
                return cache is null ? Utf8.GetString(bytes) : cache.Get(bytes);
            }
            catch (ArgumentException e)
            {
                throw new FormatException("string is not valid UTF-8", e);
            }
        }

        private static FormatException Truncated() => new("message truncated");
    }
}

/// <summary>
/// Remembers the last few strings decoded from one connection: a peer sends the same two ids (its own and ours) in every
/// message, so this spares two string allocations per message.
/// </summary>
internal sealed class Utf8StringCache
{
    private const int Slots = 4;
    private const int MaxCachedBytes = 256;
    private readonly byte[]?[] _bytes = new byte[Slots][];
    private readonly string?[] _strings = new string[Slots];
    private int _next;

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    public string Get(ReadOnlySpan<byte> utf8)
    {
        for (var i = 0; i < Slots; i++)
        {
            if (_bytes[i] is { } b && utf8.SequenceEqual(b)) return _strings[i]!;
        }
        var s = Utf8.GetString(utf8);
        if (utf8.Length <= MaxCachedBytes)
        {
            _bytes[_next] = utf8.ToArray();
            _strings[_next] = s;
            _next = (_next + 1) % Slots;
        }
        return s;
    }
}
