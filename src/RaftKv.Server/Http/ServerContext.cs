using Microsoft.Extensions.Logging;
using RaftKv.Node;

namespace RaftKv.Server.Http;

/// <summary>What every endpoint needs: the node, the options, the forwarder, a logger. One per app.</summary>
internal sealed class ServerContext(IKvNode node, ServerOptions options, ILoggerFactory loggerFactory) : IDisposable
{
    /// <summary>The node served.</summary>
    public IKvNode Node { get; } = node;

    /// <summary>HTTP behaviour.</summary>
    public ServerOptions Options { get; } = options;

    /// <summary>Sends requests on to the leader.</summary>
    public LeaderForwarder Forwarder { get; } = new(node.Id, loggerFactory.CreateLogger<LeaderForwarder>());

    /// <summary>Request-level log.</summary>
    public ILogger Logger { get; } = loggerFactory.CreateLogger("RaftKv.Server.Http");

    /// <inheritdoc/>
    public void Dispose() => Forwarder.Dispose();
}
