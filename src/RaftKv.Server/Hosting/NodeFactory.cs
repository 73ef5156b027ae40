using RaftKv.Node;

namespace RaftKv.Server.Hosting;

/// <summary>Starts the node a daemon hosts. Real runs use <see cref="KvNodeFactory.StartAsync"/>; tests pass a fake.</summary>
public delegate Task<IKvNode> NodeFactory(NodeOptions options, ILoggerFactory loggerFactory, CancellationToken cancellationToken);

/// <summary>The production <see cref="NodeFactory"/>: <see cref="KvNode.StartAsync(NodeOptions, ILoggerFactory?, CancellationToken)"/>.</summary>
public static class KvNodeFactory
{
    /// <summary>Starts a real node.</summary>
    public static async Task<IKvNode> StartAsync(NodeOptions options, ILoggerFactory loggerFactory, CancellationToken cancellationToken) =>
        await KvNode.StartAsync(options, loggerFactory, cancellationToken);
}
