namespace RaftKv.Client.Tests;

/// <summary>A <see cref="RaftkvdCluster"/> whose waits also ride out the client's own transient errors.</summary>
internal sealed class TestCluster() : RaftkvdCluster("raftkv-client-tests")
{
    public static Task Eventually(Func<Task<bool>> condition, string what, TimeSpan? timeout = null) =>
        RaftkvdCluster.Eventually(condition, what, timeout, e => e is RaftKvException);
}

/// <summary>One three-node cluster shared by the tests that do not break it (each finds the leader afresh).</summary>
public sealed class SharedCluster : IAsyncLifetime
{
    internal TestCluster Cluster { get; } = new();

    public async Task InitializeAsync()
    {
        try
        {
            await Cluster.StartClusterAsync(3);
        }
        catch
        {
            // Kill what started: a fixture whose start failed is not disposed for us.
            Cluster.Dispose();
            throw;
        }
    }

    public Task DisposeAsync()
    {
        Cluster.Dispose();
        return Task.CompletedTask;
    }
}

[CollectionDefinition(Name)]
public sealed class SharedClusterCollection : ICollectionFixture<SharedCluster>
{
    public const string Name = "shared three-node cluster";
}
