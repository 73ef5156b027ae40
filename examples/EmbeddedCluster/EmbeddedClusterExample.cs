using System.Net;
using System.Net.Sockets;
using RaftKv.Node;

namespace RaftKv.Examples.EmbeddedCluster;

/// <summary>
/// Three nodes in one process, each with its own data directory and raft port on loopback, used directly through
/// <see cref="KvNode"/>: no HTTP. Calls made on a follower are forwarded to the leader by the node itself.
/// </summary>
public static class EmbeddedClusterExample
{
    public static async Task RunAsync(string dataRoot, TextWriter output, CancellationToken cancellationToken = default)
    {
        var nodes = new List<KvNode>();
        try
        {
            // The first node founds the cluster.
            var first = await KvNode.StartAsync(Options("node0", dataRoot, bootstrap: true), cancellationToken: cancellationToken);
            nodes.Add(first);
            await WaitUntil(async () => (await first.GetStatusAsync(cancellationToken)).Ready, cancellationToken);

            // The others start empty and are added through the first, as hraftd's -join does over HTTP.
            for (var i = 1; i < 3; i++)
            {
                var options = Options("node" + i, dataRoot, bootstrap: false);
                var node = await KvNode.StartAsync(options, cancellationToken: cancellationToken);
                nodes.Add(node);
                await first.JoinAsync(new JoinRequest(options.Id, options.RaftAddress, options.HttpAdvertiseAddress), cancellationToken);
            }
            output.WriteLine($"cluster of {nodes.Count} nodes formed");

            // Write through any node: a follower forwards to the leader for us.
            await nodes[2].SetAsync([KeyValuePair.Create("user1", "batman"), KeyValuePair.Create("user2", "robin")], cancellationToken);
            foreach (var node in nodes)
            {
                var value = await node.GetAsync("user1", ReadLevel.Linearizable, cancellationToken);
                output.WriteLine($"{node.Id}: user1 = {value}");
            }

            await nodes[1].DeleteAsync("user2", cancellationToken);
            output.WriteLine($"after delete: user2 = {await nodes[0].GetAsync("user2", ReadLevel.Linearizable, cancellationToken) ?? "(missing)"}");

            var status = await nodes[0].GetStatusAsync(cancellationToken);
            output.WriteLine($"leader: {status.LeaderId}, term {status.Term}, commit index {status.CommitIndex}");
        }
        finally
        {
            foreach (var node in nodes) await node.DisposeAsync();
        }
    }

    private static NodeOptions Options(string id, string dataRoot, bool bootstrap)
    {
        var raft = $"127.0.0.1:{FreePort()}";
        return new NodeOptions
        {
            Id = id,
            DataDirectory = Path.Combine(dataRoot, id),
            RaftBindAddress = raft,
            // No HTTP here; the address is only what other nodes would forward HTTP requests to.
            HttpAdvertiseAddress = "",
            Bootstrap = bootstrap,
        };
    }

    private static int FreePort()
    {
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static async Task WaitUntil(Func<Task<bool>> condition, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the cluster did not become ready");
            await Task.Delay(50, cancellationToken);
        }
    }
}
