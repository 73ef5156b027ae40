using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using RaftKv.Node.Transport;
using RaftKv.Raft;
using static RaftKv.Node.Tests.Transport.TransportTestKit;

namespace RaftKv.Node.Tests.Transport;

public class MessageCodecTests
{
    [Fact]
    public void Every_message_type_round_trips_with_all_fields()
    {
        var rng = new Random(1);
        foreach (var type in AllTypes)
        {
            for (var i = 0; i < 50; i++)
            {
                var m = RandomMessage(rng, type, from: i % 2 == 0 ? "a" : "nœud-ü", to: "b");
                var bytes = MessageCodec.Encode(m);
                Assert.Equal(bytes.Length, MessageCodec.GetEncodedLength(m));
                AssertSame(m, MessageCodec.Decode(bytes));
            }
        }
    }

    [Fact]
    public void The_three_encoders_agree()
    {
        var rng = new Random(2);
        var m = RandomMessage(rng, MessageType.Append, maxEntries: 20);
        var array = MessageCodec.Encode(m);

        var span = new byte[array.Length + 10];
        var written = MessageCodec.Encode(m, span);
        Assert.Equal(array, span[..written]);

        var writer = new ArrayBufferWriter<byte>();
        MessageCodec.Write(m, writer);
        Assert.Equal(array, writer.WrittenSpan.ToArray());

        var frame = new ArrayBufferWriter<byte>();
        MessageCodec.WriteFrame(m, frame, 1 << 20);
        Assert.Equal((uint)array.Length, BinaryPrimitives.ReadUInt32LittleEndian(frame.WrittenSpan));
        Assert.Equal(array, frame.WrittenSpan[4..].ToArray());

        Assert.Throws<ArgumentException>(() => MessageCodec.Encode(m, new byte[array.Length - 1]));
        Assert.Throws<InvalidOperationException>(() => MessageCodec.WriteFrame(m, new ArrayBufferWriter<byte>(), array.Length - 1));
    }

    [Fact]
    public void Extreme_values_and_an_empty_message_round_trip()
    {
        var max = new Message
        {
            Type = MessageType.ReadIndexResponse,
            Term = ulong.MaxValue,
            LogTerm = ulong.MaxValue,
            Index = ulong.MaxValue,
            Commit = ulong.MaxValue,
            RejectHint = ulong.MaxValue,
            Context = ulong.MaxValue,
            Reject = true,
            Transfer = true,
            Entries = new[] { new Entry(ulong.MaxValue, ulong.MaxValue, EntryType.Configuration, new byte[] { 1 }) },
            Snapshot = new SnapshotMetadata(ulong.MaxValue, ulong.MaxValue, ClusterConfig.Empty),
        };
        AssertSame(max, MessageCodec.Decode(MessageCodec.Encode(max)));

        var empty = new Message();
        var bytes = MessageCodec.Encode(empty);
        Assert.True(bytes.Length <= 12, $"an empty message takes {bytes.Length} bytes");
        AssertSame(empty, MessageCodec.Decode(bytes));
    }

    [Fact]
    public void Entries_data_share_one_array()
    {
        var m = new Message
        {
            Type = MessageType.Append,
            Entries = new[]
            {
                new Entry(5, 1, EntryType.Normal, new byte[] { 1, 2, 3 }),
                new Entry(6, 1, EntryType.Normal, ReadOnlyMemory<byte>.Empty),
                new Entry(7, 2, EntryType.Configuration, new byte[] { 4, 5 }),
            },
        };
        var decoded = MessageCodec.Decode(MessageCodec.Encode(m));
        AssertSame(m, decoded);
        Assert.True(MemoryMarshal.TryGetArray(decoded.Entries.Span[0].Data, out var first));
        Assert.True(MemoryMarshal.TryGetArray(decoded.Entries.Span[2].Data, out var third));
        Assert.Same(first.Array, third.Array);
        Assert.Equal(5, first.Array!.Length);
        Assert.Equal(3, third.Offset);
    }

    [Fact]
    public void Every_truncation_of_a_valid_message_throws_FormatException()
    {
        var rng = new Random(3);
        foreach (var type in AllTypes)
        {
            for (var round = 0; round < 3; round++)
            {
                var bytes = MessageCodec.Encode(RandomMessage(rng, type, maxEntries: 4, maxData: 20));
                for (var length = 0; length < bytes.Length; length++)
                {
                    var prefix = bytes.AsSpan(0, length).ToArray();
                    Assert.Throws<FormatException>(() => MessageCodec.Decode(prefix));
                }
                // One byte too many is garbage as well.
                Assert.Throws<FormatException>(() => MessageCodec.Decode([.. bytes, 0]));
            }
        }
    }

    [Fact]
    public void Random_bytes_decode_or_throw_FormatException()
    {
        var rng = new Random(4);
        var decoded = 0;
        // Bytes drawn mostly from small values and varint edge cases, so that random input often gets deep into the
        // decoder (strings, counts, entry headers) instead of failing at the first byte.
        byte[] alphabet = [0, 0, 0, 0, 1, 1, 2, 3, 4, 0x7F, 0x80, 0xFF];
        for (var i = 0; i < 50_000; i++)
        {
            var bytes = new byte[rng.Next(64)];
            var uniform = rng.Next(3) == 0;
            for (var j = 0; j < bytes.Length; j++) bytes[j] = uniform || rng.Next(8) == 0 ? (byte)rng.Next(256) : alphabet[rng.Next(alphabet.Length)];
            if (DecodeOrFormatException(bytes)) decoded++;
        }
        Assert.True(decoded > 0, "the fuzzer never produced a decodable message; it is not reaching the deeper checks");
    }

    [Fact]
    public void Mutated_valid_messages_decode_or_throw_FormatException()
    {
        var rng = new Random(5);
        for (var i = 0; i < 20_000; i++)
        {
            var bytes = MessageCodec.Encode(RandomMessage(rng, AllTypes[rng.Next(AllTypes.Length)], maxEntries: 4, maxData: 16));
            var flips = 1 + rng.Next(3);
            for (var f = 0; f < flips; f++) bytes[rng.Next(bytes.Length)] = (byte)rng.Next(256);
            DecodeOrFormatException(bytes);
        }
    }

    [Fact]
    public void Forged_counts_are_refused_before_allocating()
    {
        // Entry count 2^31-1 in a 20-byte message.
        var bytes = new byte[] { (byte)MessageType.Append, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0x07, 1, 1, 0, 0 };
        Assert.Throws<FormatException>(() => MessageCodec.Decode(bytes));

        // An entry whose data length exceeds the message.
        var oneEntry = new byte[] { (byte)MessageType.Append, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0xFF, 0xFF, 0x03 };
        Assert.Throws<FormatException>(() => MessageCodec.Decode(oneEntry));

        // A snapshot configuration claiming 100 000 members in 4 bytes.
        var config = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(config, 100_000);
        byte[] snap = [(byte)MessageType.InstallSnapshot, 4, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 4, .. config, 0];
        Assert.Throws<FormatException>(() => MessageCodec.Decode(snap));

        // A varint running past 64 bits.
        var longVarint = new byte[] { 0, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x02, 0, 0, 0, 0, 0, 0 };
        Assert.Throws<FormatException>(() => MessageCodec.Decode(longVarint));
    }

    [Fact]
    public void Unknown_type_flags_entry_type_and_bad_utf8_are_refused()
    {
        var valid = MessageCodec.Encode(new Message { Type = MessageType.Append, From = "a", To = "b", Entries = new[] { new Entry(1, 1, EntryType.Normal, new byte[] { 9 }) } });
        AssertSame(MessageCodec.Decode(valid), MessageCodec.Decode(valid.ToArray()));

        var badType = valid.ToArray();
        badType[0] = (byte)(AllTypes.Length);
        Assert.Throws<FormatException>(() => MessageCodec.Decode(badType));

        var badFlags = valid.ToArray();
        badFlags[1] = 0x80;
        Assert.Throws<FormatException>(() => MessageCodec.Decode(badFlags));

        var badUtf8 = valid.ToArray();
        badUtf8[3] = 0xFF; // the byte of "a"
        Assert.Throws<FormatException>(() => MessageCodec.Decode(badUtf8));

        var badEntryType = valid.ToArray();
        badEntryType[^3] = 7; // index 1, term 1, type, length 1, data: type is third from the end
        Assert.Throws<FormatException>(() => MessageCodec.Decode(badEntryType));
    }

    [Fact]
    public void Cached_id_strings_are_reused_and_correct()
    {
        var cache = new Utf8StringCache();
        var bytes = MessageCodec.Encode(new Message { From = "leader-1", To = "follower-2" });
        var first = MessageCodec.Decode(bytes, cache);
        var second = MessageCodec.Decode(bytes, cache);
        Assert.Equal("leader-1", second.From);
        Assert.Equal("follower-2", second.To);
        Assert.Same(first.From, second.From);
        Assert.Same(first.To, second.To);
    }

    /// <summary>Decodes; a success must re-encode to a message that decodes the same. Anything but FormatException fails the test.</summary>
    private static bool DecodeOrFormatException(byte[] bytes)
    {
        Message m;
        try
        {
            m = MessageCodec.Decode(bytes);
        }
        catch (FormatException)
        {
            return false;
        }
        catch (Exception e)
        {
            Assert.Fail($"decoding {Convert.ToHexString(bytes)} threw {e.GetType().Name}: {e.Message}");
            throw;
        }
        AssertSame(m, MessageCodec.Decode(MessageCodec.Encode(m)));
        return true;
    }
}
