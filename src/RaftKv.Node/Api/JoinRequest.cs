namespace RaftKv.Node;

/// <summary>A server asking to be a member (hraftd's <c>/join</c> body, plus what RaftKv adds).</summary>
/// <param name="Id">The server's id.</param>
/// <param name="RaftAddress">Where peers reach its raft port.</param>
/// <param name="HttpAddress">Where its HTTP API is (empty: keep the one known).</param>
/// <param name="Voter">Voter (promoted once caught up) or non-voter.</param>
/// <param name="Incarnation">The server's incarnation when it asks for itself (0: unknown, as when an operator asks;
/// the leader then records the one the server's connection announces).</param>
/// <param name="ClusterId">The cluster the server already belongs to, if any (empty: none).</param>
public sealed record JoinRequest(string Id, string RaftAddress, string HttpAddress, bool Voter = true, ulong Incarnation = 0, string ClusterId = "");
