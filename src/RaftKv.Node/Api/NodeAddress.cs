using RaftKv.Raft;

namespace RaftKv.Node;

/// <summary>A server's two addresses: raft (where peers connect) and HTTP (where requests are forwarded; empty: none).</summary>
internal readonly record struct NodeAddress(string Raft, string Http)
{
    /// <summary>The addresses the cluster configuration holds for <paramref name="member"/>.</summary>
    public static NodeAddress Of(Member member) => new(member.Address, member.HttpAddress);
}
