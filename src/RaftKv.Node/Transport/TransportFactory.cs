using Microsoft.Extensions.Logging;

namespace RaftKv.Node.Transport;

/// <summary>Creates the production transport for a node.</summary>
internal static class TransportFactory
{
    public static IRaftTransport CreateTcp(NodeOptions options, ILogger log) =>
        throw new NotImplementedException("the TCP transport is being written");
}
