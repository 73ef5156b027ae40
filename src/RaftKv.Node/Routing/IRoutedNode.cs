namespace RaftKv.Node.Routing;

/// <summary>
/// What a host that reaches nodes by other means than the raft transport (raftkvd, over HTTP) needs of a node's
/// routing: to plug its forwarder in, to answer calls forwarded to it, and to honour a client that asked to be
/// redirected rather than forwarded. The decision itself stays in the node's <see cref="LeaderRouter"/>.
/// </summary>
internal interface IRoutedNode
{
    /// <summary>Who leads, as this node last saw it (cheap: no call into the raft loop).</summary>
    LeaderView Leader { get; }

    /// <summary>From now on, forwards calls to the leader through <paramref name="forwarder"/>.</summary>
    void ForwardThrough(ILeaderForwarder forwarder);

    /// <summary>Serves an encoded call another node forwarded here, and returns the encoded answer.</summary>
    Task<byte[]> AnswerForwardedAsync(ReadOnlyMemory<byte> call, CancellationToken cancellationToken);

    /// <summary>
    /// The same node, except that a call needing the leader is not forwarded: a follower waits for a leader to be
    /// known, then refuses with <see cref="NodeErrorKind.NotLeader"/> naming it (for <c>?redirect=true</c>).
    /// </summary>
    IKvNode Redirecting { get; }
}
