using System.Buffers.Binary;
using System.Text;

namespace RaftKv.Node.StateMachine;

/// <summary>What a log entry asks the key-value map to do.</summary>
internal enum KvCommandType : byte
{
    /// <summary>Set every pair, atomically.</summary>
    Set = 1,
    /// <summary>Delete one key.</summary>
    Delete = 2,
    /// <summary>Change nothing: a strong read goes through the log as this.</summary>
    Barrier = 3,
}

/// <summary>
/// The binary form of commands in the log: type byte, pair count, then length-prefixed UTF-8 strings. Applying is
/// deterministic: the same bytes give the same map on every node.
/// </summary>
internal static class KvCommand
{
    public static byte[] EncodeSet(IReadOnlyList<KeyValuePair<string, string>> pairs)
    {
        var size = 5;
        foreach (var (k, v) in pairs) size += 8 + Encoding.UTF8.GetByteCount(k) + Encoding.UTF8.GetByteCount(v);
        var buffer = new byte[size];
        buffer[0] = (byte)KvCommandType.Set;
        BinaryPrimitives.WriteInt32LittleEndian(buffer.AsSpan(1), pairs.Count);
        var pos = 5;
        foreach (var (k, v) in pairs)
        {
            pos += WriteString(buffer.AsSpan(pos), k);
            pos += WriteString(buffer.AsSpan(pos), v);
        }
        return buffer;
    }

    public static byte[] EncodeDelete(string key)
    {
        var buffer = new byte[1 + 4 + Encoding.UTF8.GetByteCount(key)];
        buffer[0] = (byte)KvCommandType.Delete;
        WriteString(buffer.AsSpan(1), key);
        return buffer;
    }

    public static byte[] EncodeBarrier() => [(byte)KvCommandType.Barrier];

    /// <summary>
    /// Decodes into <paramref name="effects"/> (key and new value; null deletes); throws <see cref="FormatException"/>
    /// on malformed bytes, after which the list may hold part of the command and must not be applied.
    /// </summary>
    public static void Decode(ReadOnlySpan<byte> data, List<(string Key, string? Value)> effects)
    {
        if (data.IsEmpty) throw new FormatException("empty command");
        var pos = 1;
        switch ((KvCommandType)data[0])
        {
            case KvCommandType.Set:
                if (data.Length < 5) throw new FormatException("truncated set");
                var n = BinaryPrimitives.ReadInt32LittleEndian(data[1..]);
                if (n < 0 || n > data.Length) throw new FormatException("bad pair count");
                pos = 5;
                for (var i = 0; i < n; i++)
                {
                    var k = ReadString(data, ref pos);
                    effects.Add((k, ReadString(data, ref pos)));
                }
                break;
            case KvCommandType.Delete:
                effects.Add((ReadString(data, ref pos), null));
                break;
            case KvCommandType.Barrier:
                break;
            default:
                throw new FormatException($"unknown command type {data[0]}");
        }
    }

    private static int WriteString(Span<byte> span, string s)
    {
        var n = Encoding.UTF8.GetBytes(s, span[4..]);
        BinaryPrimitives.WriteInt32LittleEndian(span, n);
        return 4 + n;
    }

    private static string ReadString(ReadOnlySpan<byte> data, ref int pos)
    {
        if (data.Length - pos < 4) throw new FormatException("truncated string");
        var n = BinaryPrimitives.ReadInt32LittleEndian(data[pos..]);
        pos += 4;
        // Compared as remaining bytes: pos + n overflows for a forged length near int.MaxValue.
        if (n < 0 || n > data.Length - pos) throw new FormatException("truncated string");
        var s = Encoding.UTF8.GetString(data.Slice(pos, n));
        pos += n;
        return s;
    }
}
