using RaftKv.Raft;

namespace RaftKv.Node.Routing;

/// <summary>
/// Who leads, as the raft loop last saw it. Published by the loop on every leadership or membership change and read
/// by routing without queueing anything to the loop, so that the choice between serving here and forwarding is made
/// before a request costs the loop anything. It can be stale by the time it is read; the loop's own refusal covers that.
/// </summary>
internal sealed record LeaderView(bool IsSelf, string? LeaderId, string? LeaderHttpAddress, bool IsMember)
{
    /// <summary>Before the loop's first turn: nothing known, so requests are tried here.</summary>
    public static LeaderView Unknown { get; } = new(false, null, null, false);

    /// <summary>
    /// True when a request for the leader should go straight to another node. Only a member forwards up front: a node
    /// not (or no longer) in the configuration tries here, and the loop says why it cannot serve (removed, say).
    /// </summary>
    public bool LeaderIsElsewhere => IsMember && !IsSelf && LeaderId is not null;

    /// <summary>True while no leader is known to a member: an election is under way.</summary>
    public bool AwaitsElection => IsMember && !IsSelf && LeaderId is null;

    /// <summary>The view of node <paramref name="selfId"/> under <paramref name="config"/>.</summary>
    public static LeaderView Of(string selfId, bool isLeader, string? leaderId, ClusterConfig config)
    {
        var http = leaderId is not null && config.Find(leaderId) is { } leader ? leader.HttpAddress : "";
        return new LeaderView(isLeader, leaderId, http.Length > 0 ? http : null, config.Find(selfId) is not null);
    }
}
