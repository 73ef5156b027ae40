using RaftKv.Client;

// Outside the RaftKv namespaces, so that nothing but the usings shown brings RaftKv types into scope.
namespace ReadmeSnippets;

/// <summary>
/// The C# snippet of the README's "RaftKv.Client, the .NET library" section, compiled with the usings it shows: it must build as a reader
/// copies it. ReadmeSnippetTests checks that the README shows exactly these usings and these lines.
/// </summary>
internal static class ClientLibrarySnippet
{
    public static async Task RunAsync()
    {
        // README snippet start
        using var client = new RaftKvClient(new RaftKvClientOptions { Endpoints = ["localhost:11000", "localhost:11001"] });
        await client.SetAsync("user1", "batman");
        await client.SetManyAsync([KeyValuePair.Create("a", "1"), KeyValuePair.Create("b", "2")]);   // one atomic write
        string? value = await client.GetAsync("user1", ReadLevel.Linearizable);                     // null when missing
        await client.DeleteAsync("user1");
        try
        {
            await client.SetAsync("k", "v", timeout: TimeSpan.FromSeconds(2));
        }
        catch (RaftKvIndeterminateException)
        {
            // The write reached the cluster but its outcome is unknown (a timeout, or the leader died mid-request):
            // it may or may not have been applied. Read the key to find out before writing again.
        }
        // README snippet end
    }
}
