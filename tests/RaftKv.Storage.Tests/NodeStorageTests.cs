using RaftKv.Raft;
using RaftKv.Storage.Snapshots;

namespace RaftKv.Storage.Tests;

public class NodeStorageTests
{
    private static readonly StorageOptions Options = new() { SegmentSize = 4096, WriteBufferBytes = 4096 };

    private static void Snapshot(NodeStorage node, ulong index, int seed)
    {
        using var w = node.Snapshots.Create(new SnapshotMetadata(index, node.Log.Term(index), Make.Config("a", "b", "c")));
        var data = new byte[10_000];
        new Random(seed).NextBytes(data);
        w.Stream.Write(data);
        w.Commit();
    }

    /// <summary>Entries 1..100, snapshots at 40 and 60 recorded in the log, log compacted up to <paramref name="compactTo"/>.</summary>
    private static void Prepare(TempDir dir, ulong compactTo)
    {
        using var node = NodeStorage.Open(dir.Path, Options);
        node.Log.Append(Make.Entries(1, 100, 2, 50));
        node.Log.SetHardState(new HardState(2, "a", 90));
        Snapshot(node, 40, 1);
        node.Log.SetSnapshot(node.Snapshots.Find(40)!.Metadata);
        Snapshot(node, 60, 2);
        node.Log.SetSnapshot(node.Snapshots.Find(60)!.Metadata);
        node.Log.Compact(compactTo);
        node.Log.Sync();
    }

    private static void Damage(string path)
    {
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x20;
        File.WriteAllBytes(path, bytes);
    }

    private static string SnapshotPath(TempDir dir, ulong index) =>
        Directory.GetFiles(dir.Combine(NodeStorage.SnapshotFolder), $"{index:x16}-*.snap").Single();

    [Fact]
    public void Fresh_directory_starts_empty_and_is_locked_while_open()
    {
        using var dir = new TempDir();
        using (var node = NodeStorage.Open(dir.Path))
        {
            Assert.Null(node.RestoreFrom);
            Assert.Equal((1ul, 0ul), (node.Log.FirstIndex, node.Log.LastIndex));
            Assert.True(Directory.Exists(dir.Combine("wal")));
            Assert.True(Directory.Exists(dir.Combine("snapshots")));
            var e = Assert.Throws<IOException>(() => NodeStorage.Open(dir.Path));
            Assert.Contains("in use by another process", e.Message);
        }
        NodeStorage.Open(dir.Path).Dispose();
    }

    [Fact]
    public void Reopen_restores_from_the_newest_snapshot()
    {
        using var dir = new TempDir();
        Prepare(dir, compactTo: 50);
        using var node = NodeStorage.Open(dir.Path, Options);
        Assert.Equal(60ul, node.RestoreFrom!.Metadata.Index);
        Assert.Equal(60ul, node.Log.Snapshot.Index);
        Assert.Equal((51ul, 100ul), (node.Log.FirstIndex, node.Log.LastIndex));
        Assert.Equal(new HardState(2, "a", 90), node.Log.HardState);
    }

    [Fact]
    public void Damaged_newest_snapshot_falls_back_when_the_log_covers_the_gap()
    {
        using var dir = new TempDir();
        Prepare(dir, compactTo: 30);
        Damage(SnapshotPath(dir, 60));
        var warnings = new List<string>();
        using var node = NodeStorage.Open(dir.Path, Options, warnings.Add);
        Assert.Equal(40ul, node.RestoreFrom!.Metadata.Index);
        Assert.Equal(40ul, node.Log.Snapshot.Index);
        Assert.Contains(warnings, w => w.Contains("checksum mismatch"));
        Assert.Contains(warnings, w => w.Contains("falling back"));
    }

    [Fact]
    public void Damaged_newest_snapshot_is_refused_when_the_log_was_compacted_past_the_older_one()
    {
        using var dir = new TempDir();
        Prepare(dir, compactTo: 50);
        var path = SnapshotPath(dir, 60);
        Damage(path);
        var e = Assert.Throws<StorageCorruptException>(() => NodeStorage.Open(dir.Path, Options).Dispose());
        Assert.Equal(path, e.FilePath);
        Assert.Contains("checksum mismatch", e.Message);
        Assert.Contains("log starts at index 51", e.Message);
        Assert.Contains(Path.GetFileName(path), e.Message);
        Assert.Contains("byte offset", e.Message);
    }

    [Fact]
    public void Snapshot_committed_but_not_yet_recorded_in_the_log_is_adopted()
    {
        using var dir = new TempDir();
        Prepare(dir, compactTo: 50);
        using (var node = NodeStorage.Open(dir.Path, Options))
        {
            Snapshot(node, 80, 3); // crash before Log.SetSnapshot
        }
        using (var node = NodeStorage.Open(dir.Path, Options))
        {
            Assert.Equal(80ul, node.RestoreFrom!.Metadata.Index);
            Assert.Equal(80ul, node.Log.Snapshot.Index);
            Assert.Equal(100ul, node.Log.LastIndex);
        }
    }

    [Fact]
    public void Received_snapshot_beyond_the_log_replaces_it()
    {
        using var dir = new TempDir();
        Prepare(dir, compactTo: 50);
        using (var node = NodeStorage.Open(dir.Path, Options))
        {
            node.Snapshots.Receive(new SnapshotMetadata(500, 7, Make.Config("a")), new MemoryStream(new byte[100])); // crash before Log.InstallSnapshot
        }
        var warnings = new List<string>();
        using (var node = NodeStorage.Open(dir.Path, Options, warnings.Add))
        {
            Assert.Equal(500ul, node.RestoreFrom!.Metadata.Index);
            Assert.Equal((501ul, 500ul, 7ul), (node.Log.FirstIndex, node.Log.LastIndex, node.Log.Term(500)));
            Assert.Equal(500ul, node.Log.HardState.Commit);
            Assert.Single(warnings);
        }
    }

    [Fact]
    public void Compacted_log_without_any_snapshot_file_is_refused()
    {
        using var dir = new TempDir();
        Prepare(dir, compactTo: 30);
        foreach (var f in Directory.GetFiles(dir.Combine("snapshots"))) File.Delete(f);
        var e = Assert.Throws<StorageCorruptException>(() => NodeStorage.Open(dir.Path, Options).Dispose());
        Assert.Contains("no snapshot file covers", e.Message);
    }

    [Fact]
    public void Lost_wal_with_snapshots_present_is_refused()
    {
        using var dir = new TempDir();
        Prepare(dir, compactTo: 30);
        Directory.Delete(dir.Combine("wal"), recursive: true);
        var e = Assert.Throws<StorageCorruptException>(() => NodeStorage.Open(dir.Path, Options).Dispose());
        Assert.Contains("WAL is missing", e.Message);
        Assert.False(Directory.Exists(dir.Combine("wal")) && Directory.EnumerateFiles(dir.Combine("wal")).Any());
        Assert.Throws<StorageCorruptException>(() => NodeStorage.Open(dir.Path, Options).Dispose()); // still refused next time
    }

    [Fact]
    public void Snapshot_file_read_back_through_the_node_matches()
    {
        using var dir = new TempDir();
        Prepare(dir, compactTo: 10);
        using var node = NodeStorage.Open(dir.Path, Options);
        using var s = SnapshotStore.OpenRead(node.RestoreFrom!);
        var expected = new byte[10_000];
        new Random(2).NextBytes(expected);
        using var m = new MemoryStream();
        s.CopyTo(m);
        Assert.Equal(expected, m.ToArray());
    }
}
