using RaftKv.Examples.EmbeddedCluster;

namespace RaftKv.Node.Tests.Examples;

/// <summary>The embedded-cluster example runs as shipped: three nodes in one process over real TCP, no HTTP.</summary>
public sealed class EmbeddedClusterExampleTests
{
    [Fact]
    public async Task Example_FormsAClusterAndServesCallsOnAnyNode_AndRunsAgainOnTheSameDirectory()
    {
        var root = Path.Combine(Path.GetTempPath(), "raftkv-example-test", Guid.NewGuid().ToString("N"));
        var output = new StringWriter();
        var again = new StringWriter();
        try
        {
            await EmbeddedClusterExample.RunAsync(root, output);
            // A second run used to pick new ports while the stored configuration named the old ones: TimeoutException after 32 s.
            await EmbeddedClusterExample.RunAsync(root, again);
        }
        finally
        {
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
        var text = output.ToString();
        Assert.Contains("cluster of 3 nodes formed", text);
        Assert.Contains("cluster of 3 nodes started again", again.ToString());
        foreach (var run in new[] { text, again.ToString() })
        {
            foreach (var id in new[] { "node0", "node1", "node2" }) Assert.Contains($"{id}: user1 = batman", run);
            Assert.Contains("after delete: user2 = (missing)", run);
        }
    }
}
