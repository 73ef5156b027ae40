using System.Collections.Concurrent;

namespace RaftKv.Node.Transport;

/// <summary>
/// Who this transport says it is in its handshakes: node id and advertised address (fixed), and the cluster id and
/// incarnation, which the raft loop sets once its state is known (a new node learns its cluster id from the log).
/// Connections read the hello at each connect, so a changed identity reaches every new connection.
/// </summary>
internal sealed class LocalIdentity(string localId, string advertisedAddress)
{
    private sealed record Hellos(string ClusterId, ulong Incarnation, byte[] Messages, byte[] Snapshot, byte[] Call);

    private volatile Hellos _hellos = Build(localId, advertisedAddress, "", 0);

    /// <summary>The cluster this node belongs to; empty while it belongs to none (a new node waiting to be added).</summary>
    public string ClusterId => _hellos.ClusterId;

    /// <summary>This node's incarnation (0: not set).</summary>
    public ulong Incarnation => _hellos.Incarnation;

    /// <summary>Peers whose listener refused this node as a member of another cluster: their cluster ids, and when (<see cref="Environment.TickCount64"/>).</summary>
    public ConcurrentDictionary<string, (string ClusterId, long Tick)> RefusedBy { get; } = new(StringComparer.Ordinal);

    public void Set(string clusterId, ulong incarnation)
    {
        var current = _hellos;
        if (current.ClusterId == clusterId && current.Incarnation == incarnation) return;
        _hellos = Build(localId, advertisedAddress, clusterId, incarnation);
    }

    public byte[] Hello(ConnectionKind kind)
    {
        var h = _hellos;
        return kind switch
        {
            ConnectionKind.Messages => h.Messages,
            ConnectionKind.Snapshot => h.Snapshot,
            _ => h.Call,
        };
    }

    /// <summary>
    /// May a caller of <paramref name="callerClusterId"/> talk to this node? Yes unless both belong to a cluster and
    /// they differ: a node not in a cluster yet must hear the leader that adds it, and a leader must hear it answer.
    /// </summary>
    public bool Admits(string callerClusterId)
    {
        var ours = ClusterId;
        return ours.Length == 0 || callerClusterId.Length == 0 || ours == callerClusterId;
    }

    private static Hellos Build(string id, string address, string clusterId, ulong incarnation) => new(
        clusterId, incarnation,
        Handshake.EncodeHello(ConnectionKind.Messages, id, address, clusterId, incarnation),
        Handshake.EncodeHello(ConnectionKind.Snapshot, id, address, clusterId, incarnation),
        Handshake.EncodeHello(ConnectionKind.Call, id, address, clusterId, incarnation));
}
