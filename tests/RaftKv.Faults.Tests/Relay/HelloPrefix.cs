using System.Buffers.Binary;
using System.Text;

namespace RaftKv.Faults.Tests.Relay;

/// <summary>
/// Reads who is calling from the first bytes of a raft connection, the transport's hello:
/// "RKVT" | u16 version | u8 kind | u8 0 | u16 idLength | u16 addressLength | id (UTF-8) | address | ... (little-endian).
/// Only this prefix up to the id is read: the version is not checked and whatever the handshake carries after it
/// (fields may be added there) is forwarded untouched, so the relay keeps working as the handshake grows.
/// </summary>
public static class HelloPrefix
{
    public const int FixedLength = 12;

    /// <summary>Reads the prefix from <paramref name="stream"/>; returns the bytes read (to forward) and the caller's id, or null when it is no hello.</summary>
    public static async Task<(byte[] Bytes, string? CallerId)> ReadAsync(Stream stream, CancellationToken ct)
    {
        var head = new byte[FixedLength];
        var got = await ReadUpTo(stream, head, ct);
        if (got < FixedLength || !head.AsSpan(0, 4).SequenceEqual("RKVT"u8)) return (head[..got], null);
        var idLength = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(8));
        var id = new byte[idLength];
        var idGot = await ReadUpTo(stream, id, ct);
        var bytes = new byte[FixedLength + idGot];
        head.CopyTo(bytes, 0);
        id.AsSpan(0, idGot).CopyTo(bytes.AsSpan(FixedLength));
        return (bytes, idGot == idLength ? Encoding.UTF8.GetString(id) : null);
    }

    private static async Task<int> ReadUpTo(Stream stream, byte[] buffer, CancellationToken ct)
    {
        var total = 0;
        while (total < buffer.Length)
        {
            var n = await stream.ReadAsync(buffer.AsMemory(total), ct);
            if (n == 0) break;
            total += n;
        }
        return total;
    }
}
