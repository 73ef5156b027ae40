using RaftKv.Raft;
using RaftKv.Storage.Snapshots;

namespace RaftKv.Storage.Tests;

public class SnapshotStoreTests
{
    private static byte[] Data(int length, int seed)
    {
        var b = new byte[length];
        new Random(seed).NextBytes(b);
        return b;
    }

    private static SnapshotInfo Write(SnapshotStore store, ulong index, byte[] data, ulong term = 1)
    {
        using var w = store.Create(new SnapshotMetadata(index, term, Make.Config("a", "b")));
        for (var at = 0; at < data.Length; at += 7919) w.Stream.Write(data, at, Math.Min(7919, data.Length - at));
        return w.Commit();
    }

    private static byte[] ReadAll(SnapshotInfo info)
    {
        using var s = SnapshotStore.OpenRead(info);
        using var m = new MemoryStream();
        s.CopyTo(m);
        return m.ToArray();
    }

    [Fact]
    public void Round_trips_metadata_and_streamed_data()
    {
        using var dir = new TempDir();
        var store = SnapshotStore.Open(dir.Path);
        var data = Data(3_000_000, 1);
        var info = Write(store, 42, data, term: 3);
        Assert.Equal(Path.Combine(dir.Path, "000000000000002a-0000000000000003.snap"), info.FilePath);
        var listed = Assert.Single(store.List());
        Assert.Equal(new SnapshotMetadata(42, 3, Make.Config("a", "b")), listed.Metadata);
        Assert.Equal(data.Length, listed.DataLength);
        Assert.Equal(data, ReadAll(listed));
        SnapshotStore.Verify(listed);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }

    [Fact]
    public void Empty_snapshot_is_fine()
    {
        using var dir = new TempDir();
        var store = SnapshotStore.Open(dir.Path);
        var info = Write(store, 1, []);
        Assert.Empty(ReadAll(info));
    }

    [Fact]
    public void Keeps_only_the_newest_N()
    {
        using var dir = new TempDir();
        var store = SnapshotStore.Open(dir.Path, retain: 2);
        foreach (var i in new ulong[] { 10, 30, 20, 40 }) Write(store, i, Data(100, (int)i));
        Assert.Equal([40ul, 30ul], store.List().Select(s => s.Metadata.Index));
        Assert.Equal(40ul, store.Latest()!.Metadata.Index);
        Assert.Equal(30ul, store.Find(30)!.Metadata.Index);
        Assert.Null(store.Find(20));
    }

    [Fact]
    public void Dispose_without_commit_leaves_nothing()
    {
        using var dir = new TempDir();
        var store = SnapshotStore.Open(dir.Path);
        using (var w = store.Create(new SnapshotMetadata(5, 1, Make.Config("a"))))
        {
            w.Stream.Write(Data(1000, 2));
            Assert.True(File.Exists(w.TempPath));
        }
        Assert.Empty(Directory.GetFiles(dir.Path));
        Assert.Null(store.Latest());
    }

    [Fact]
    public void Leftover_temporary_files_are_removed_on_open()
    {
        using var dir = new TempDir();
        var store = SnapshotStore.Open(dir.Path);
        var w = store.Create(new SnapshotMetadata(5, 1, Make.Config("a")));
        w.Stream.Write(Data(1000, 2)); // crash: never committed nor disposed
        var warnings = new List<string>();
        SnapshotStore.Open(dir.Path, warn: warnings.Add);
        Assert.Empty(Directory.GetFiles(dir.Path));
        Assert.Single(warnings);
        w.Dispose();
    }

    [Fact]
    public async Task Receives_a_stream_through_a_temporary_file()
    {
        using var dir = new TempDir();
        var store = SnapshotStore.Open(dir.Path);
        var data = Data(2_500_000, 3);
        var info = await store.ReceiveAsync(new SnapshotMetadata(77, 2, Make.Config("a")), new MemoryStream(data));
        Assert.Equal(data, ReadAll(info));
        Assert.Equal(77ul, store.Latest()!.Metadata.Index);

        // A sender that fails midway leaves no snapshot behind.
        await Assert.ThrowsAsync<IOException>(() => store.ReceiveAsync(new SnapshotMetadata(99, 2, Make.Config("a")), new FailingStream(data)));
        Assert.Equal(77ul, store.Latest()!.Metadata.Index);
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
    }

    [Fact]
    public void Damaged_data_is_detected_by_verify_and_by_reading_to_the_end()
    {
        using var dir = new TempDir();
        var store = SnapshotStore.Open(dir.Path);
        var info = Write(store, 9, Data(50_000, 4));
        var bytes = File.ReadAllBytes(info.FilePath);
        bytes[bytes.Length / 2] ^= 4;
        File.WriteAllBytes(info.FilePath, bytes);
        var listed = Assert.Single(store.List()); // header and trailer are intact
        var e = Assert.Throws<StorageCorruptException>(() => SnapshotStore.Verify(listed));
        Assert.Contains(Path.GetFileName(info.FilePath), e.Message);
        Assert.Throws<StorageCorruptException>(() => ReadAll(listed));
    }

    [Fact]
    public void Damaged_header_or_missing_trailer_is_left_out_of_the_list()
    {
        using var dir = new TempDir();
        var warnings = new List<string>();
        var store = SnapshotStore.Open(dir.Path, retain: 5, warn: warnings.Add);
        var a = Write(store, 1, Data(1000, 5));
        var b = Write(store, 2, Data(1000, 6));
        Write(store, 3, Data(1000, 7));
        var bytes = File.ReadAllBytes(a.FilePath);
        bytes[20] ^= 1;
        File.WriteAllBytes(a.FilePath, bytes);
        File.WriteAllBytes(b.FilePath, File.ReadAllBytes(b.FilePath)[..^10]);
        Assert.Equal([3ul], store.List().Select(s => s.Metadata.Index));
        Assert.Equal(2, warnings.Count);
    }

    private sealed class FailingStream(byte[] data) : Stream
    {
        private int _pos;
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => _pos; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count)
        {
            if (_pos > data.Length / 2) throw new IOException("connection reset");
            var n = Math.Min(count, 100_000);
            Array.Copy(data, _pos, buffer, offset, n);
            _pos += n;
            return n;
        }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
