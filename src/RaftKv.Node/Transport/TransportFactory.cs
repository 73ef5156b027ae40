using Microsoft.Extensions.Logging;

namespace RaftKv.Node.Transport;

/// <summary>Creates the production transport for a node.</summary>
internal static class TransportFactory
{
    /// <summary>
    /// The TCP transport, bound to <see cref="NodeOptions.RaftBindAddress"/> (throws if it cannot be bound). It announces
    /// <see cref="NodeOptions.RaftAdvertiseAddress"/> to the nodes it calls, or, when none is set, the address it actually
    /// bound (so a bind port of 0 still announces the real port).
    /// </summary>
    public static IRaftTransport CreateTcp(NodeOptions options, ILogger log) =>
        new TcpTransport(options.Id, options.RaftBindAddress, log, options.Transport, options.RaftAdvertiseAddress);
}
