using RaftKv.Raft;

namespace RaftKv.Storage.Snapshots;

/// <summary>
/// A snapshot being written: write the state machine's bytes to <see cref="Stream"/>, then <see cref="Commit"/>.
/// The bytes go to a temporary file; nothing becomes visible in the store before <see cref="Commit"/>, and
/// <see cref="Dispose"/> without a commit deletes the temporary file.
/// </summary>
public sealed class SnapshotWriter : IDisposable
{
    private readonly SnapshotStore _store;
    private readonly FileStream _file;
    private readonly DataStream _data;
    private readonly long _headerLength;
    private bool _done;

    internal SnapshotWriter(SnapshotStore store, SnapshotMetadata metadata)
    {
        _store = store;
        Metadata = metadata;
        FinalPath = Path.Combine(store.Directory, SnapshotFile.FileName(metadata));
        TempPath = FinalPath + "." + Guid.NewGuid().ToString("N") + ".tmp";
        _file = new FileStream(TempPath, new FileStreamOptions
        {
            Mode = FileMode.CreateNew,
            Access = FileAccess.Write,
            Share = FileShare.None,
            BufferSize = 1 << 20,
        });
        try
        {
            var header = SnapshotFile.EncodeHeader(metadata);
            _file.Write(header);
            _headerLength = header.Length;
        }
        catch
        {
            _file.Dispose();
            File.Delete(TempPath);
            throw;
        }
        _data = new DataStream(this);
    }

    /// <summary>What the snapshot covers.</summary>
    public SnapshotMetadata Metadata { get; }

    /// <summary>The temporary file the data is written to.</summary>
    public string TempPath { get; }

    /// <summary>The name the snapshot gets on <see cref="Commit"/>.</summary>
    public string FinalPath { get; }

    /// <summary>Where the state machine writes its bytes (write-only, forward-only).</summary>
    public Stream Stream => _data;

    /// <summary>
    /// Finishes the snapshot: appends the checksum trailer, fsyncs the file, renames it into place, fsyncs the directory,
    /// and deletes the snapshots beyond the newest <see cref="StorageOptions.SnapshotsRetained"/>. Returns the snapshot.
    /// </summary>
    public SnapshotInfo Commit() => Finish(keepFromPruning: false);

    /// <summary>
    /// <see cref="Commit"/> for a snapshot received from the leader: pruning leaves it alone until
    /// <see cref="SnapshotStore.ReleaseReceived"/> (it must still be there when the node installs it).
    /// </summary>
    internal SnapshotInfo CommitReceived() => Finish(keepFromPruning: true);

    private SnapshotInfo Finish(bool keepFromPruning)
    {
        ObjectDisposedException.ThrowIf(_done, this);
        _done = true;
        try
        {
            _file.Write(SnapshotFile.EncodeTrailer(_data.Written, _data.Crc));
            _file.Flush(flushToDisk: true);
            _file.Dispose();
            // Kept before it is visible: a concurrent commit's pruning must never see it unprotected.
            if (keepFromPruning) _store.KeepReceived(FinalPath, Metadata.Index);
            File.Move(TempPath, FinalPath, overwrite: true);
            Durable.FlushDirectory(_store.Directory);
        }
        catch
        {
            _file.Dispose();
            File.Delete(TempPath);
            throw;
        }
        var info = new SnapshotInfo(Metadata, FinalPath, _data.Written)
        {
            DataOffset = _headerLength,
            DataChecksum = _data.Crc,
        };
        _store.Prune();
        return info;
    }

    /// <summary>Abandons the snapshot unless it was committed: the temporary file is deleted.</summary>
    public void Dispose()
    {
        if (_done) return;
        _done = true;
        _file.Dispose();
        File.Delete(TempPath);
    }

    private sealed class DataStream(SnapshotWriter owner) : Stream
    {
        public long Written;
        public uint Crc;

        public override bool CanRead => false;

        public override bool CanSeek => false;

        public override bool CanWrite => !owner._done;

        public override long Length => Written;

        public override long Position
        {
            get => Written;
            set => throw new NotSupportedException();
        }

        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            ObjectDisposedException.ThrowIf(owner._done, owner);
            owner._file.Write(buffer);
            Crc = Crc32C.Append(Crc, buffer);
            Written += buffer.Length;
        }

        public override async ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default)
        {
            ObjectDisposedException.ThrowIf(owner._done, owner);
            await owner._file.WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
            Crc = Crc32C.Append(Crc, buffer.Span);
            Written += buffer.Length;
        }

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override void WriteByte(byte value) => Write([value]);

        public override void Flush() { } // durability comes with Commit

        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}
