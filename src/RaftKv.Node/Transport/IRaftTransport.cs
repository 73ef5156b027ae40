using RaftKv.Raft;
using RaftKv.Storage.Snapshots;

namespace RaftKv.Node.Transport;

/// <summary>
/// Moves raft messages between nodes. Sending never blocks the raft loop: each peer has a bounded queue, and a
/// message that does not fit is dropped (Raft retries). Snapshots travel on their own connection, streamed from
/// the snapshot file, so they never delay heartbeats.
/// </summary>
public interface IRaftTransport : IAsyncDisposable
{
    /// <summary>Starts listening; inbound messages go to <paramref name="onMessage"/> (called from transport threads),
    /// inbound snapshots to <paramref name="onSnapshot"/>, which must store the stream before it returns and then hand
    /// the message to the raft loop.</summary>
    Task StartAsync(Action<Message> onMessage, Func<Message, Stream, CancellationToken, Task> onSnapshot, CancellationToken cancellationToken);

    /// <summary>
    /// Tells the transport where each peer's raft address is (ids not listed are forgotten). A node that has just been
    /// added does not know its leader's address until the configuration reaches it through the log, so a transport
    /// also learns the address of every node that connects to it (the connection's handshake carries the caller's id
    /// and advertised raft address) and uses it to answer a node not in this map.
    /// </summary>
    void SetPeers(IReadOnlyDictionary<string, string> raftAddressById);

    /// <summary>
    /// Sets the cluster id and incarnation this node announces in its handshakes. Callers from another cluster are
    /// refused (unless either side is in no cluster yet), and inbound messages are stamped with the caller's incarnation.
    /// </summary>
    void SetIdentity(string clusterId, ulong incarnation);

    /// <summary>
    /// The cluster id of <paramref name="peerId"/> if it refused this node as a member of another cluster at or after
    /// <paramref name="sinceTick"/> (<see cref="Environment.TickCount64"/>) and has not accepted it since, else null.
    /// </summary>
    string? RefusedAsOtherCluster(string peerId, long sinceTick = long.MinValue);

    /// <summary>Queues a message for its recipient; false if it was dropped (unknown peer or full queue).</summary>
    bool Send(Message message);

    /// <summary>
    /// Answers requests peers send with <see cref="CallAsync"/> (the handler runs on a transport thread and its answer
    /// goes back on the same connection). Without a handler, calls are refused.
    /// </summary>
    void SetCallHandler(Func<ReadOnlyMemory<byte>, CancellationToken, Task<byte[]>> handler);

    /// <summary>Sends one request to a peer on a connection of its own and returns the peer's answer.</summary>
    /// <exception cref="IOException">The peer is unknown, unreachable, or the exchange broke or timed out.</exception>
    Task<byte[]> CallAsync(string peerId, ReadOnlyMemory<byte> request, TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>Streams a snapshot to <paramref name="message"/>.To in the background; <paramref name="done"/> reports success or failure.</summary>
    void SendSnapshot(Message message, SnapshotInfo snapshot, Action<bool> done);
}
