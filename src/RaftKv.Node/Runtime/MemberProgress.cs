using RaftKv.Raft;

namespace RaftKv.Node.Runtime;

/// <summary>A member as the leader sees it while a join waits for it to catch up.</summary>
/// <param name="ClusterId">This node's cluster.</param>
/// <param name="IsLeader">Whether this node leads (only the leader knows how far the others are).</param>
/// <param name="Member">The member in the configuration in force, or null.</param>
/// <param name="CommitIndex">This node's commit index.</param>
/// <param name="Match">Highest index known replicated on the member.</param>
/// <param name="ObservedIncarnation">The incarnation its messages announced (0: none yet).</param>
/// <param name="RefusedAsOtherCluster">The member's cluster id if it refused this node as of another cluster, else null.</param>
/// <param name="LocalOnlyMember">A member whose raft address only this machine can reach (localhost), if any.</param>
internal sealed record MemberProgress(string ClusterId, bool IsLeader, Member? Member, ulong CommitIndex, ulong Match, ulong ObservedIncarnation,
    string? RefusedAsOtherCluster, Member? LocalOnlyMember);
