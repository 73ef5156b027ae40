using Microsoft.Extensions.Logging;
using RaftKv.Node;
using RaftKv.Node.Routing;

namespace RaftKv.Server.Http;

/// <summary>What every endpoint needs: the node, the options, a logger. One per app.</summary>
internal sealed class ServerContext : IDisposable
{
    /// <summary>Hands the node the HTTP way to its leader: from now on its routing forwards over HTTP.</summary>
    public ServerContext(IKvNode node, ServerOptions options, ILoggerFactory loggerFactory)
    {
        Node = node;
        Options = options;
        Logger = loggerFactory.CreateLogger("RaftKv.Server.Http");
        Forwarder = new LeaderForwarder(loggerFactory.CreateLogger<LeaderForwarder>());
        (node as IRoutedNode)?.ForwardThrough(Forwarder);
    }

    /// <summary>The node served.</summary>
    public IKvNode Node { get; }

    /// <summary>HTTP behaviour.</summary>
    public ServerOptions Options { get; }

    /// <summary>Carries the node's forwarded calls to the leader.</summary>
    public LeaderForwarder Forwarder { get; }

    /// <summary>Request-level log.</summary>
    public ILogger Logger { get; }

    /// <inheritdoc/>
    public void Dispose() => Forwarder.Dispose();
}
