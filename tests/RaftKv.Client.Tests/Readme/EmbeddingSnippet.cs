using RaftKv.Node;

// Outside the RaftKv namespaces, so that nothing but the usings shown brings RaftKv types into scope.
namespace ReadmeSnippets;

/// <summary>
/// The C# snippet of the README's "Embedding a node" section, compiled with the usings it shows: it must build as a reader
/// copies it. ReadmeSnippetTests checks that the README shows exactly these usings and these lines.
/// </summary>
internal static class EmbeddingSnippet
{
    public static async Task RunAsync()
    {
        // README snippet start
        var node = await KvNode.StartAsync(new NodeOptions
        {
            Id = "node0",
            DataDirectory = "/var/lib/myapp/node0",
            RaftBindAddress = "10.0.0.1:12000",
            HttpAdvertiseAddress = "",     // no HTTP API in this process
            Bootstrap = true,              // found a new cluster (only the first node, on empty storage)
        });
        await node.JoinAsync(new JoinRequest("node1", "10.0.0.2:12000", ""));   // add a node started without Bootstrap
        await node.SetAsync([KeyValuePair.Create("user1", "batman")]);
        var value = await node.GetAsync("user1", ReadLevel.Linearizable);
        await node.DeleteAsync("user1");
        await node.DisposeAsync();
        // README snippet end
    }
}
