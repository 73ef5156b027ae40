using RaftKv.Raft;
using RaftKv.Storage.Snapshots;

namespace RaftKv.Storage.Tests;

/// <summary>Snapshots arriving from the leader: one incoming file at a time, and none pruned before it is installed.</summary>
public sealed class SnapshotReceiveTests
{
    /// <summary>A stream that yields some bytes, then waits (honouring cancellation) until released, then ends.</summary>
    private sealed class GatedStream(int before, int after) : Stream
    {
        private int _left = before;
        private int _tail = after;
        private readonly TaskCompletionSource _gate = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public TaskCompletionSource Waiting { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public void Release() => _gate.TrySetResult();

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            if (_left > 0)
            {
                var n = Math.Min(_left, buffer.Length);
                buffer.Span[..n].Fill(7);
                _left -= n;
                return n;
            }
            Waiting.TrySetResult();
            await _gate.Task.WaitAsync(cancellationToken);
            var m = Math.Min(_tail, buffer.Length);
            buffer.Span[..m].Fill(9);
            _tail -= m;
            return m;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }

    private static int TempFiles(TempDir dir) => Directory.GetFiles(dir.Path, "*.tmp").Length;

    private static CancellationToken Deadline() => new CancellationTokenSource(TimeSpan.FromSeconds(10)).Token;

    [Fact]
    public async Task A_newer_incoming_snapshot_replaces_the_one_being_received_so_one_file_is_on_disk()
    {
        // Each stream used to get its own temporary file: seven concurrent streams of one 600 MB snapshot wrote 4.2 GB.
        using var dir = new TempDir();
        var warnings = new List<string>();
        var store = SnapshotStore.Open(dir.Path, retain: 2, warnings.Add);
        var first = new GatedStream(300_000, 10);
        var receivingFirst = store.ReceiveAsync(new SnapshotMetadata(10, 1, Make.Config("a")), first);
        await first.Waiting.Task.WaitAsync(Deadline());
        Assert.Equal(1, TempFiles(dir));

        var second = new GatedStream(200_000, 10);
        var receivingSecond = store.ReceiveAsync(new SnapshotMetadata(12, 2, Make.Config("a")), second);
        // The older receive is abandoned, its file deleted before the newer one creates its own.
        var e = await Assert.ThrowsAsync<IOException>(() => receivingFirst.WaitAsync(Deadline()));
        Assert.Contains("replaced", e.Message);
        await second.Waiting.Task.WaitAsync(Deadline());
        Assert.Equal(1, TempFiles(dir));
        Assert.Contains(warnings, w => w.Contains("replaces the one still being received"));

        second.Release();
        var stored = await receivingSecond.WaitAsync(Deadline());
        Assert.Equal(12ul, stored.Metadata.Index);
        Assert.Equal(200_010, stored.DataLength);
        Assert.Equal(0, TempFiles(dir));
        Assert.Equal([12ul], store.List().Select(s => s.Metadata.Index));

        // Received one at a time, each completes.
        var third = await store.ReceiveAsync(new SnapshotMetadata(14, 2, Make.Config("a")), new MemoryStream(new byte[100]));
        Assert.Equal(14ul, third.Metadata.Index);
    }

    [Fact]
    public async Task A_received_snapshot_is_not_pruned_before_it_is_released()
    {
        // The node installs a received snapshot after the receive returns; snapshots committed meanwhile (the node's
        // own, or another received one) must not prune it under the installer.
        using var dir = new TempDir();
        var store = SnapshotStore.Open(dir.Path, retain: 1);
        var received = await store.ReceiveAsync(new SnapshotMetadata(10, 1, Make.Config("a")), new MemoryStream(new byte[500]));
        foreach (var index in new ulong[] { 20, 30 })
        {
            using var w = store.Create(new SnapshotMetadata(index, 1, Make.Config("a")));
            w.Stream.Write(new byte[50]);
            w.Commit();
        }
        var found = store.Find(10);
        Assert.NotNull(found);
        Assert.Equal(received.FilePath, found.FilePath);
        await using (var read = SnapshotStore.OpenRead(found))
        {
            await read.CopyToAsync(Stream.Null);
        }

        // Installed: the next commit prunes it like any other.
        store.ReleaseReceived(10);
        using (var w = store.Create(new SnapshotMetadata(40, 1, Make.Config("a"))))
        {
            w.Stream.Write(new byte[50]);
            w.Commit();
        }
        Assert.Equal([40ul], store.List().Select(s => s.Metadata.Index));
    }
}
