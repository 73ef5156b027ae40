using RaftKv.Raft;

namespace RaftKv.Storage.Tests;

/// <summary>FileLogStorage.BeginSync / BackgroundSync.Flush / CompleteSync: a sync split across two threads.</summary>
public class BackgroundSyncTests
{
    private static readonly StorageOptions Small = Make.SmallSegments;

    [Fact]
    public async Task Flush_on_another_thread_then_complete_keeps_every_write()
    {
        using var dir = new TempDir();
        var model = new MemoryStorage();
        using (var wal = FileLogStorage.Open(dir.Path, Small))
        {
            var syncs = new List<BackgroundSync>();
            for (ulong i = 0; i < 20; i++)
            {
                foreach (var s in new IRaftLogStorage[] { wal, model })
                {
                    s.Append(Make.Entries(i * 10 + 1, i * 10 + 10, 1, 100));
                    s.SetHardState(new HardState(1, "a", i * 10));
                }
                syncs.Add(wal.BeginSync());
            }
            // Only the newest is flushed (on another thread); it covers the older ones.
            await Task.Run(() => syncs[^1].Flush());
            foreach (var s in syncs.Take(syncs.Count - 1)) s.CoveredBy(syncs[^1]);
            foreach (var s in syncs) wal.CompleteSync(s);
            Assert.True(wal.SegmentCount > 1);
        }
        using var again = FileLogStorage.Open(dir.Path, Small);
        Assert.Equal(Describe.State(model), Describe.State(again));
    }

    [Fact]
    public void Synchronous_sync_is_refused_while_a_background_one_is_in_flight()
    {
        using var dir = new TempDir();
        using var wal = FileLogStorage.Open(dir.Path, Small);
        wal.Append(Make.Entries(1, 5, 1));
        var sync = wal.BeginSync();
        Assert.Throws<InvalidOperationException>(wal.Sync);
        Assert.Throws<InvalidOperationException>(() => wal.CompleteSync(sync)); // not flushed yet
        sync.Flush();
        wal.CompleteSync(sync);
        wal.Sync();
    }

    [Fact]
    public void Segments_obsoleted_after_a_sync_began_are_kept_until_a_later_one_completes()
    {
        using var dir = new TempDir();
        using var wal = FileLogStorage.Open(dir.Path, Small);
        wal.Append(Make.Entries(1, 400, 1, 100));
        wal.Sync();
        var before = Directory.GetFiles(dir.Path).Length;
        var early = wal.BeginSync();
        // The compaction record is written after the sync began: that sync does not make it durable.
        wal.SetSnapshot(new SnapshotMetadata(350, 1, Make.Config("a")));
        wal.Compact(350);
        early.Flush();
        wal.CompleteSync(early);
        Assert.Equal(before, Directory.GetFiles(dir.Path).Length);
        var later = wal.BeginSync();
        later.Flush();
        wal.CompleteSync(later);
        Assert.True(Directory.GetFiles(dir.Path).Length <= 3);
        Assert.Equal(351ul, wal.FirstIndex);
    }
}
