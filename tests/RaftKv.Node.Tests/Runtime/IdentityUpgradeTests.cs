using RaftKv.Raft;
using RaftKv.Storage;

namespace RaftKv.Node.Tests.Runtime;

/// <summary>A data directory written before identities existed: no cluster id, no incarnations, no INCARNATION file.</summary>
public sealed class IdentityUpgradeTests
{
    [Fact]
    public async Task A_cluster_founded_before_identities_gets_its_cluster_id_and_incarnations_recorded()
    {
        var log = new LogCapture();
        await using var c = new NodeCluster { LoggerFactory = log };
        var options = c.OptionsFor("n1", bootstrap: false);
        // What an older raftkvd left: a log that starts with a configuration in the old format.
        using (var storage = NodeStorage.Open(options.DataDirectory))
        {
            var legacy = new ClusterConfig([new Member("n1", options.RaftAddress, true) { HttpAddress = options.HttpAdvertiseAddress }]);
            RaftCore.Bootstrap(storage.Log, legacy);
        }
        File.Delete(Path.Combine(options.DataDirectory, "INCARNATION"));

        var node = await c.StartAsync("n1");
        var deadline = DateTime.UtcNow.AddSeconds(15);
        NodeStatus status;
        while (true)
        {
            status = await node.GetStatusAsync();
            if (status.ClusterId.Length > 0 && status.Servers.Single().Incarnation != 0) break;
            Assert.True(DateTime.UtcNow < deadline, $"identities not recorded within 15 s: cluster '{status.ClusterId}'");
            await Task.Delay(20);
        }
        Assert.Equal(status.Incarnation, status.Servers.Single().Incarnation);
        Assert.True(File.Exists(Path.Combine(options.DataDirectory, "INCARNATION")));
        Assert.Contains(log.Messages, m => m.Contains("founded before cluster identities"));
        Assert.Contains(log.Messages, m => m.Contains("no incarnation recorded"));

        // A restart keeps both: the incarnation is the same node's, the cluster id is in the log.
        await c.StopAsync("n1");
        node = await c.StartAsync("n1");
        var again = await node.GetStatusAsync();
        Assert.Equal(status.ClusterId, again.ClusterId);
        Assert.Equal(status.Incarnation, again.Incarnation);
    }
}
