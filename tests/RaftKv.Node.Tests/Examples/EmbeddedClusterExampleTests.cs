using RaftKv.Examples.EmbeddedCluster;

namespace RaftKv.Node.Tests.Examples;

/// <summary>The embedded-cluster example runs as shipped: three nodes in one process over real TCP, no HTTP.</summary>
public sealed class EmbeddedClusterExampleTests
{
    [Fact]
    public async Task Example_FormsAClusterAndServesCallsOnAnyNode()
    {
        var root = Path.Combine(Path.GetTempPath(), "raftkv-example-test", Guid.NewGuid().ToString("N"));
        var output = new StringWriter();
        try
        {
            await EmbeddedClusterExample.RunAsync(root, output);
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
        foreach (var id in new[] { "node0", "node1", "node2" }) Assert.Contains($"{id}: user1 = batman", text);
        Assert.Contains("after delete: user2 = (missing)", text);
    }
}
