using System.Buffers.Binary;
using System.Net.Sockets;
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
/// configuration, such as the leader of a cluster it has just been added to; and which cluster and which incarnation
/// it is, so that two clusters never exchange messages and a node that lost its data is told apart from its past.
/// </summary>
/// <remarks>
/// <code>
/// hello: "RKVT" | u16 version | u8 kind | u8 0 | u16 idLength | u16 addressLength | id | address (UTF-8)
///        | u16 clusterIdLength | clusterId (UTF-8, empty: not in a cluster yet) | u64 incarnation
/// reply: "RKVT" | u16 version | u8 status | u16 clusterIdLength | clusterId (the listener's)
/// </code>
/// All integers little-endian. The address is the caller's advertised raft address, "host:port". The prefix up to
/// the address is the same as version 1's, so tools that only read the caller's id keep working.
/// </remarks>
internal static class Handshake
{
    public const ushort Version = 2;
    public const int HelloFixedLength = 12;
    public const int ReplyLength = 9;
    public const int MaxIdBytes = NodeIds.MaxBytes;
    public const int MaxAddressBytes = 1024;
    public const int MaxClusterIdBytes = 64;

    public const byte Accepted = 0;
    public const byte UnsupportedVersion = 1;
    public const byte UnsupportedKind = 2;
    public const byte WrongCluster = 3;

    public static ReadOnlySpan<byte> Magic => "RKVT"u8;

    /// <summary>What both sides of a refused handshake tell the operator.</summary>
    public const string WrongClusterAdvice =
        "One of the two clusters was founded anew: a node that lost its data and was started without -join founds a new cluster, " +
        "whose writes are its own. To bring such a node back, stop it, empty its data directory and start it with -join naming a member of the cluster it belongs in";

    public static byte[] EncodeHello(ConnectionKind kind, string localId, string advertisedAddress, string clusterId = "", ulong incarnation = 0)
    {
        var id = Encoding.UTF8.GetBytes(localId);
        var address = Encoding.UTF8.GetBytes(advertisedAddress);
        var cluster = Encoding.UTF8.GetBytes(clusterId);
        if (id.Length > MaxIdBytes) throw new ArgumentException($"node id longer than {MaxIdBytes} bytes", nameof(localId));
        if (address.Length > MaxAddressBytes) throw new ArgumentException($"address longer than {MaxAddressBytes} bytes", nameof(advertisedAddress));
        if (cluster.Length > MaxClusterIdBytes) throw new ArgumentException($"cluster id longer than {MaxClusterIdBytes} bytes", nameof(clusterId));
        var hello = new byte[HelloFixedLength + id.Length + address.Length + 2 + cluster.Length + 8];
        Magic.CopyTo(hello);
        BinaryPrimitives.WriteUInt16LittleEndian(hello.AsSpan(4), Version);
        hello[6] = (byte)kind;
        BinaryPrimitives.WriteUInt16LittleEndian(hello.AsSpan(8), (ushort)id.Length);
        BinaryPrimitives.WriteUInt16LittleEndian(hello.AsSpan(10), (ushort)address.Length);
        var pos = HelloFixedLength;
        id.CopyTo(hello.AsSpan(pos));
        pos += id.Length;
        address.CopyTo(hello.AsSpan(pos));
        pos += address.Length;
        BinaryPrimitives.WriteUInt16LittleEndian(hello.AsSpan(pos), (ushort)cluster.Length);
        pos += 2;
        cluster.CopyTo(hello.AsSpan(pos));
        pos += cluster.Length;
        BinaryPrimitives.WriteUInt64LittleEndian(hello.AsSpan(pos), incarnation);
        return hello;
    }

    public static byte[] EncodeReply(byte status, string clusterId = "")
    {
        var cluster = Encoding.UTF8.GetBytes(clusterId);
        var reply = new byte[ReplyLength + cluster.Length];
        Magic.CopyTo(reply);
        BinaryPrimitives.WriteUInt16LittleEndian(reply.AsSpan(4), Version);
        reply[6] = status;
        BinaryPrimitives.WriteUInt16LittleEndian(reply.AsSpan(7), (ushort)cluster.Length);
        cluster.CopyTo(reply.AsSpan(ReplyLength));
        return reply;
    }

    /// <summary>
    /// Sends <paramref name="hello"/> and reads the listener's reply; throws <see cref="PeerRefusedException"/> (or
    /// <see cref="InvalidDataException"/> for a listener that is no RaftKv node) explaining a refusal.
    /// </summary>
    public static async Task ExchangeAsync(Socket socket, byte[] hello, string peer, CancellationToken ct)
    {
        await socket.SendAllAsync(hello, ct).ConfigureAwait(false);
        var head = new byte[ReplyLength];
        await socket.ReceiveExactlyAsync(head, ct).ConfigureAwait(false);
        if (!head.AsSpan(0, 4).SequenceEqual(Magic)) throw new InvalidDataException($"{peer} is not a RaftKv raft port (bad handshake reply)");
        var clusterLength = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(7));
        if (clusterLength > MaxClusterIdBytes) throw new InvalidDataException($"{peer} sent a malformed handshake reply");
        var reply = new byte[ReplyLength + clusterLength];
        head.CopyTo(reply, 0);
        await socket.ReceiveExactlyAsync(reply.AsMemory(ReplyLength), ct).ConfigureAwait(false);
        CheckReply(reply, peer);
    }

    /// <summary>Checks a listener's whole reply; throws <see cref="PeerRefusedException"/> explaining a refusal.</summary>
    public static void CheckReply(ReadOnlySpan<byte> reply, string peer)
    {
        if (reply.Length < 7 || !reply[..4].SequenceEqual(Magic)) throw new InvalidDataException($"{peer} is not a RaftKv raft port (bad handshake reply)");
        var version = BinaryPrimitives.ReadUInt16LittleEndian(reply[4..]);
        var clusterId = "";
        if (reply.Length >= ReplyLength)
        {
            var n = BinaryPrimitives.ReadUInt16LittleEndian(reply[7..]);
            if (n <= reply.Length - ReplyLength) clusterId = Encoding.UTF8.GetString(reply.Slice(ReplyLength, n));
        }
        switch (reply[6])
        {
            case Accepted:
                return;
            case UnsupportedVersion:
                throw new PeerRefusedException($"{peer} speaks transport version {version}, this node speaks {Version}; run the same RaftKv version on every node", null);
            case UnsupportedKind:
                throw new PeerRefusedException($"{peer} refused the connection kind", null);
            case WrongCluster:
                throw new PeerRefusedException($"{peer} belongs to another cluster ({clusterId}) and refuses this node's messages. {WrongClusterAdvice}", clusterId);
            default:
                throw new PeerRefusedException($"{peer} refused the connection (status {reply[6]})", null);
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

/// <summary>A listener answered the handshake with a refusal.</summary>
/// <param name="message">What happened and what to do.</param>
/// <param name="otherClusterId">The listener's cluster, when it refused because it belongs to another one; else null.</param>
internal sealed class PeerRefusedException(string message, string? otherClusterId) : IOException(message)
{
    /// <summary>The listener's cluster id when it refused a caller of another cluster.</summary>
    public string? OtherClusterId { get; } = otherClusterId;
}
