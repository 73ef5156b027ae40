using RaftKv.Raft;
using RaftKv.Storage.Snapshots;

namespace RaftKv.Storage.Tests;

/// <summary>The raft loop looks snapshots up while a worker commits new ones (which prunes old files).</summary>
public sealed class SnapshotStoreConcurrencyTests
{
    [Fact]
    public async Task Find_WhileAnotherThreadCommitsAndPrunes_NeverThrows()
    {
        using var dir = new TempDir();
        var store = SnapshotStore.Open(dir.Path, retain: 2);
        var config = new ClusterConfig([new Member("n1", "a", true)]);
        var stop = DateTime.UtcNow + TimeSpan.FromSeconds(2);
        ulong latest = 0;
        var writer = Task.Run(() =>
        {
            for (ulong i = 1; DateTime.UtcNow < stop; i++)
            {
                using var w = store.Create(new SnapshotMetadata(i, 1, config));
                w.Stream.Write(new byte[16]);
                w.Commit();
                Volatile.Write(ref latest, i);
            }
        });
        Exception? failure = null;
        var finds = 0;
        while (!writer.IsCompleted && failure is null)
        {
            try
            {
                store.Find(Volatile.Read(ref latest));
                finds++;
            }
            catch (Exception e)
            {
                failure = e;
            }
        }
        await writer;
        Assert.True(failure is null, $"Find threw after {finds} calls: {failure}");
        Assert.True(finds > 0);
    }
}
