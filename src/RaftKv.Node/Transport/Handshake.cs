using System.Buffers.Binary;
using System.Text;

namespace RaftKv.Node.Transport;

/// <summary>What an outbound connection carries, announced in its handshake.</summary>
internal enum ConnectionKind : byte
{
    /// <summary>A stream of message frames, one way, for as long as the connection lives.</summary>
    Messages = 1,

    /// <summary>One snapshot: a header frame, chunk frames, an end frame, then the receiver's one-byte acknowledgement.</summary>
    Snapshot = 2,

    /// <summary>One request frame and its answer frame (an embedded node forwarding a client call to its leader).</summary>
    Call = 3,
}

/// <summary>
/// The first bytes on every raft connection. The caller sends a hello, the listener answers with a reply; only then do
/// frames flow. The magic makes a stray client (a port scanner, curl pointed at the wrong port) fail at once instead of
/// being read as frames, and the version lets a future wire format refuse an old peer with a clear message. The hello
/// also says who is calling and where it can be reached, so that a node can answer a caller that is not (yet) in its
/// configuration, such as the leader of a cluster it has just been added to.
/// </summary>
/// <remarks>
/// <code>
/// hello: "RKVT" | u16 version | u8 kind | u8 0 | u16 idLength | u16 addressLength | id | address (UTF-8)
/// reply: "RKVT" | u16 version | u8 status (0 accepted, 1 unsupported version, 2 unsupported kind)
/// </code>
/// All integers little-endian. The address is the caller's advertised raft address, "host:port".
/// </remarks>
internal static class Handshake
{
    public const ushort Version = 1;
    public const int HelloFixedLength = 12;
    public const int ReplyLength = 7;
    public const int MaxIdBytes = NodeIds.MaxBytes;
    public const int MaxAddressBytes = 1024;

    public const byte Accepted = 0;
    public const byte UnsupportedVersion = 1;
    public const byte UnsupportedKind = 2;

    public static ReadOnlySpan<byte> Magic => "RKVT"u8;

    public static byte[] EncodeHello(ConnectionKind kind, string localId, string advertisedAddress)
    {
        var id = Encoding.UTF8.GetBytes(localId);
        var address = Encoding.UTF8.GetBytes(advertisedAddress);
        if (id.Length > MaxIdBytes) throw new ArgumentException($"node id longer than {MaxIdBytes} bytes", nameof(localId));
        if (address.Length > MaxAddressBytes) throw new ArgumentException($"address longer than {MaxAddressBytes} bytes", nameof(advertisedAddress));
        var hello = new byte[HelloFixedLength + id.Length + address.Length];
        Magic.CopyTo(hello);
        BinaryPrimitives.WriteUInt16LittleEndian(hello.AsSpan(4), Version);
        hello[6] = (byte)kind;
        BinaryPrimitives.WriteUInt16LittleEndian(hello.AsSpan(8), (ushort)id.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(hello.AsSpan(10), (ushort)address.Length);
        id.CopyTo(hello.AsSpan(HelloFixedLength));
        address.CopyTo(hello.AsSpan(HelloFixedLength + id.Length));
        return hello;
    }

    public static byte[] EncodeReply(byte status)
    {
        var reply = new byte[ReplyLength];
        Magic.CopyTo(reply);
        BinaryPrimitives.WriteUInt16LittleEndian(reply.AsSpan(4), Version);
        reply[6] = status;
        return reply;
    }

    /// <summary>Checks a listener's reply; throws <see cref="InvalidDataException"/> explaining a refusal.</summary>
    public static void CheckReply(ReadOnlySpan<byte> reply, string peer)
    {
        if (!reply[..4].SequenceEqual(Magic)) throw new InvalidDataException($"{peer} is not a RaftKv raft port (bad handshake reply)");
        var version = BinaryPrimitives.ReadUInt16LittleEndian(reply[4..]);
        switch (reply[6])
        {
            case Accepted:
                return;
            case UnsupportedVersion:
                throw new InvalidDataException($"{peer} speaks transport version {version}, this node speaks {Version}");
            case UnsupportedKind:
                throw new InvalidDataException($"{peer} refused the connection kind");
            default:
                throw new InvalidDataException($"{peer} refused the connection (status {reply[6]})");
        }
    }

    /// <summary>True when the first bytes look like an HTTP request: someone pointed an HTTP client at the raft port.</summary>
    public static bool LooksLikeHttp(ReadOnlySpan<byte> first) =>
        first.StartsWith("GET "u8) || first.StartsWith("POST"u8) || first.StartsWith("PUT "u8) || first.StartsWith("HEAD"u8)
        || first.StartsWith("DELE"u8) || first.StartsWith("OPTI"u8) || first.StartsWith("PATC"u8) || first.StartsWith("PRI "u8);

    /// <summary>What an HTTP client gets from the raft port, so that a misconfigured client says why instead of hanging.</summary>
    public static readonly byte[] HttpRejection = BuildHttpRejection();

    private static byte[] BuildHttpRejection()
    {
        const string body = "{\"error\": \"this is a RaftKv raft (peer) port; send HTTP requests to the node's HTTP address instead\"}";
        var head = $"HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {Encoding.UTF8.GetByteCount(body)}\r\n\r\n";
        return Encoding.UTF8.GetBytes(head + body);
    }
}
