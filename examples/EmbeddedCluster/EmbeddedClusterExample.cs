using System.Net;
using System.Net.Sockets;
using RaftKv.Node;

namespace RaftKv.Examples.EmbeddedCluster;

/// <summary>
/// Three nodes in one process, each with its own data directory and raft port on loopback, used directly through
/// <see cref="KvNode"/>: no HTTP. Calls made on a follower are forwarded to the leader by the node itself. Run again on
/// the same data directory, it starts the same cluster again, on the same ports, with its data.
/// </summary>
public static class EmbeddedClusterExample
{
    private static readonly string[] Ids = ["node0", "node1", "node2"];

    public static async Task RunAsync(string dataRoot, TextWriter output, CancellationToken cancellationToken = default)
    {
        var addresses = RaftAddresses.LoadOrCreate(dataRoot, Ids);
        var nodes = new List<KvNode>();
        try
        {
            if (addresses.Restarting)
            {
                // Every node has its state, and the cluster's configuration names these addresses: start them all
                // (none is a leader until a majority is up), then wait for one to lead.
                foreach (var id in Ids) nodes.Add(await KvNode.StartAsync(Options(id, dataRoot, addresses.Of(id), bootstrap: false), cancellationToken: cancellationToken));
                await WaitUntil(async () => (await nodes[0].GetStatusAsync(cancellationToken)).Ready, cancellationToken);
                output.WriteLine($"cluster of {nodes.Count} nodes started again from {dataRoot}");
            }
            else
            {
                // The first node founds the cluster.
                var first = await KvNode.StartAsync(Options(Ids[0], dataRoot, addresses.Of(Ids[0]), bootstrap: true), cancellationToken: cancellationToken);
                nodes.Add(first);
                await WaitUntil(async () => (await first.GetStatusAsync(cancellationToken)).Ready, cancellationToken);

                // The others start empty and are added through the first, as hraftd's -join does over HTTP.
                foreach (var id in Ids.Skip(1))
                {
                    var options = Options(id, dataRoot, addresses.Of(id), bootstrap: false);
                    nodes.Add(await KvNode.StartAsync(options, cancellationToken: cancellationToken));
                    await first.JoinAsync(new JoinRequest(options.Id, options.RaftAddress, options.HttpAdvertiseAddress), cancellationToken);
                }
                output.WriteLine($"cluster of {nodes.Count} nodes formed");
            }

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

    private static NodeOptions Options(string id, string dataRoot, string raftAddress, bool bootstrap) => new()
    {
        Id = id,
        DataDirectory = Path.Combine(dataRoot, id),
        RaftBindAddress = raftAddress,
        // No HTTP here; the address is only what other nodes would forward HTTP requests to.
        HttpAdvertiseAddress = "",
        Bootstrap = bootstrap,
    };

    private static async Task WaitUntil(Func<Task<bool>> condition, CancellationToken cancellationToken)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the cluster did not become ready");
            await Task.Delay(50, cancellationToken);
        }
    }

    /// <summary>
    /// Each node's raft address, kept in a file beside the nodes' data. The cluster's configuration, stored with every
    /// node, names these addresses: a cluster started again must use them, not new ports.
    /// </summary>
    private sealed class RaftAddresses
    {
        private const string FileName = "raft-addresses.txt";
        private readonly Dictionary<string, string> _byId;

        private RaftAddresses(Dictionary<string, string> byId, bool restarting)
        {
            _byId = byId;
            Restarting = restarting;
        }

        /// <summary>True when the nodes ran here before (their data and addresses are kept).</summary>
        public bool Restarting { get; }

        public string Of(string id) => _byId[id];

        public static RaftAddresses LoadOrCreate(string dataRoot, string[] ids)
        {
            var path = Path.Combine(dataRoot, FileName);
            if (File.Exists(path))
            {
                var byId = File.ReadAllLines(path).Select(l => l.Split(' ', 2)).Where(p => p.Length == 2).ToDictionary(p => p[0], p => p[1]);
                if (!ids.All(byId.ContainsKey)) throw new InvalidOperationException($"{path} does not name every node; remove {dataRoot} to start a new cluster");
                foreach (var (id, address) in byId)
                {
                    if (!IsFree(address)) throw new InvalidOperationException($"{id}'s raft address {address} (from {path}) is taken by another program; free it, or remove {dataRoot} to start a new cluster");
                }
                return new RaftAddresses(byId, restarting: true);
            }
            if (ids.Any(id => Directory.Exists(Path.Combine(dataRoot, id))))
            {
                throw new InvalidOperationException($"{dataRoot} holds node data but not {FileName}, which records the addresses its cluster was configured with; remove {dataRoot} to start a new cluster");
            }
            var fresh = ids.ToDictionary(id => id, _ => $"127.0.0.1:{FreePort()}");
            Directory.CreateDirectory(dataRoot);
            File.WriteAllLines(path, fresh.Select(p => $"{p.Key} {p.Value}"));
            return new RaftAddresses(fresh, restarting: false);
        }

        private static int FreePort()
        {
            using var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            return ((IPEndPoint)l.LocalEndpoint).Port;
        }

        private static bool IsFree(string address)
        {
            try
            {
                using var l = new TcpListener(IPEndPoint.Parse(address));
                l.Start();
                return true;
            }
            catch (Exception e) when (e is SocketException or FormatException)
            {
                return false;
            }
        }
    }
}
