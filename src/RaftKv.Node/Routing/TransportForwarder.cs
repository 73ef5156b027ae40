using RaftKv.Node.Transport;

namespace RaftKv.Node.Routing;

/// <summary>
/// Forwards over the raft transport's call connections (a connection of their own, never queued behind raft
/// traffic): the embedded node's way, as it has no HTTP address to be reached at.
/// </summary>
internal sealed class TransportForwarder(IRaftTransport transport) : ILeaderForwarder
{
    /// <inheritdoc />
    public Task<byte[]> ForwardAsync(string leaderId, string? leaderHttpAddress, byte[] call, CancellationToken cancellationToken) =>
        // The request's deadline is in the token; the call adds no clock of its own.
        transport.CallAsync(leaderId, call, Timeout.InfiniteTimeSpan, cancellationToken);
}
