namespace RaftKv.Node;

/// <summary>
/// A server's two addresses. The cluster configuration keeps one opaque address string per server; RaftKv stores
/// both addresses there as <c>raft-address|http-address</c>, so every node knows where to forward requests.
/// </summary>
public readonly record struct NodeAddress(string Raft, string Http)
{
    /// <summary>The form kept in the cluster configuration.</summary>
    public override string ToString() => Http.Length == 0 ? Raft : Raft + "|" + Http;

    /// <summary>Reads the configuration form (an address without '|' is a raft address alone).</summary>
    public static NodeAddress Parse(string s)
    {
        var bar = s.IndexOf('|');
        return bar < 0 ? new NodeAddress(s, "") : new NodeAddress(s[..bar], s[(bar + 1)..]);
    }
}
