using RaftKv.Raft;

namespace RaftKv.Storage.Tests;

public class FileLogStorageTests
{
    private static readonly StorageOptions Small = Make.SmallSegments;

    [Fact]
    public void Fresh_log_looks_like_a_fresh_MemoryStorage()
    {
        using var dir = new TempDir();
        using var wal = FileLogStorage.Open(dir.Path);
        Assert.Equal(Describe.State(new MemoryStorage()), Describe.State(wal));
        Assert.Equal(1, wal.SegmentCount);
    }

    [Fact]
    public void Survives_reopen_with_entries_hard_state_and_snapshot()
    {
        using var dir = new TempDir();
        var model = new MemoryStorage();
        using (var wal = FileLogStorage.Open(dir.Path, Small))
        {
            foreach (var s in new IRaftLogStorage[] { wal, model })
            {
                s.Append(Make.Entries(1, 50, 1, 100));
                s.Append(Make.Entries(40, 60, 2, 30)); // overwrites 40..50
                s.SetHardState(new HardState(2, "b", 45));
                s.SetSnapshot(new SnapshotMetadata(30, 1, Make.Config("a", "b", "c")));
                s.Compact(25);
                s.Sync();
            }
            Assert.Equal(Describe.State(model), Describe.State(wal));
            Assert.True(wal.SegmentCount > 1);
        }
        using var again = FileLogStorage.Open(dir.Path, Small);
        Assert.Equal(Describe.State(model), Describe.State(again));
    }

    [Fact]
    public void Compaction_deletes_whole_segments_after_sync()
    {
        using var dir = new TempDir();
        using var wal = FileLogStorage.Open(dir.Path, Small);
        wal.Append(Make.Entries(1, 400, 1, 100));
        wal.Sync();
        var before = Directory.GetFiles(dir.Path).Length;
        Assert.True(before > 5);
        wal.SetSnapshot(new SnapshotMetadata(350, 1, Make.Config("a")));
        wal.Compact(350);
        Assert.Equal(before, Directory.GetFiles(dir.Path).Length); // not before the compaction is durable
        wal.Sync();
        var after = Directory.GetFiles(dir.Path).Length;
        Assert.True(after <= 3, $"{after} segments left");
        Assert.Equal(351ul, wal.FirstIndex);
        wal.Dispose();
        using var again = FileLogStorage.Open(dir.Path, Small);
        Assert.Equal(351ul, again.FirstIndex);
        Assert.Equal(400ul, again.LastIndex);
        Assert.Equal(1ul, again.Term(350));
    }

    [Fact]
    public void Install_snapshot_drops_the_log_and_its_segments()
    {
        using var dir = new TempDir();
        using var wal = FileLogStorage.Open(dir.Path, Small);
        wal.Append(Make.Entries(1, 200, 1, 100));
        var meta = new SnapshotMetadata(500, 3, Make.Config("a", "b"));
        wal.InstallSnapshot(meta);
        wal.Sync();
        Assert.Equal(1, wal.SegmentCount);
        Assert.Equal((501ul, 500ul, 3ul), (wal.FirstIndex, wal.LastIndex, wal.Term(500)));
        wal.Append([Make.Entry(501, 3)]);
        wal.Dispose();
        using var again = FileLogStorage.Open(dir.Path, Small);
        Assert.Equal(meta, again.Snapshot);
        Assert.Equal((501ul, 501ul), (again.FirstIndex, again.LastIndex));
    }

    [Fact]
    public void Old_entries_are_read_back_from_disk_with_maxBytes_like_MemoryStorage()
    {
        using var dir = new TempDir();
        var model = new MemoryStorage();
        using var wal = FileLogStorage.Open(dir.Path, Small);
        var rng = new Random(5);
        ulong next = 1;
        while (next < 300)
        {
            var batch = Enumerable.Range(0, rng.Next(1, 10)).Select(i => Make.Entry(next + (ulong)i, 1, rng.Next(0, 300))).ToArray();
            wal.Append(batch);
            model.Append(batch);
            next += (ulong)batch.Length;
        }
        for (var n = 0; n < 300; n++)
        {
            var lo = (ulong)rng.Next(1, (int)next);
            var hi = (ulong)rng.Next((int)lo, (int)next + 1);
            var max = rng.Next(0, 3) == 0 ? long.MaxValue : rng.Next(0, 4000);
            List<Entry> a = [], b = [];
            wal.GetEntries(lo, hi, max, a);
            model.GetEntries(lo, hi, max, b);
            Assert.Equal(Describe.Entries(b), Describe.Entries(a));
        }
    }

    [Fact]
    public void Argument_errors_match_MemoryStorage_and_leave_the_log_usable()
    {
        using var dir = new TempDir();
        using var wal = FileLogStorage.Open(dir.Path);
        wal.Append(Make.Entries(1, 5, 1));
        Assert.Throws<ArgumentOutOfRangeException>(() => wal.Append([Make.Entry(7, 1)]));
        Assert.Throws<ArgumentException>(() => wal.Append([Make.Entry(6, 1), Make.Entry(8, 1)]));
        Assert.Throws<ArgumentOutOfRangeException>(() => wal.Term(6));
        Assert.Throws<ArgumentOutOfRangeException>(() => wal.Compact(3)); // beyond snapshot 0
        Assert.Throws<ArgumentOutOfRangeException>(() => wal.GetEntries(0, 2, long.MaxValue, []));
        wal.SetSnapshot(new SnapshotMetadata(4, 1, Make.Config("a")));
        Assert.Throws<ArgumentException>(() => wal.SetSnapshot(new SnapshotMetadata(3, 1, Make.Config("a"))));
        wal.Append([Make.Entry(6, 1)]);
        Assert.Equal(6ul, wal.LastIndex);
    }

    [Fact]
    public void Unsynced_writes_in_the_buffer_are_lost_by_a_crash_synced_ones_are_not()
    {
        using var dir = new TempDir();
        var wal = FileLogStorage.Open(dir.Path);
        wal.Append(Make.Entries(1, 10, 1));
        wal.SetHardState(new HardState(1, "a", 5));
        wal.Sync();
        wal.Append(Make.Entries(11, 20, 1));
        wal.SimulateCrash();
        using var again = FileLogStorage.Open(dir.Path);
        Assert.Equal(10ul, again.LastIndex);
        Assert.Equal(new HardState(1, "a", 5), again.HardState);
    }

    [Fact]
    public void Huge_entry_gets_its_own_segment()
    {
        using var dir = new TempDir();
        var big = new Entry(2, 1, EntryType.Normal, Enumerable.Range(0, 20_000).Select(i => (byte)i).ToArray());
        using (var wal = FileLogStorage.Open(dir.Path, Small))
        {
            wal.Append([Make.Entry(1, 1), big, Make.Entry(3, 1)]);
            wal.Sync();
        }
        using var again = FileLogStorage.Open(dir.Path, Small);
        var list = new List<Entry>();
        again.GetEntries(1, 4, long.MaxValue, list);
        Assert.Equal(big.Data.ToArray(), list[1].Data.ToArray());
        Assert.Equal(3, again.SegmentCount);
    }
}
