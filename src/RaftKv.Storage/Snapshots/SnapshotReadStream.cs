namespace RaftKv.Storage.Snapshots;

/// <summary>
/// The data of a snapshot, read forward only. The checksum is computed as the bytes go by and compared with the trailer's
/// when the end is reached: a reader that consumes the whole stream (a restore, or a send to a follower) gets a
/// <see cref="StorageCorruptException"/> instead of a silent end if the data was damaged.
/// </summary>
internal sealed class SnapshotReadStream : Stream
{
    private readonly SnapshotInfo _info;
    private readonly FileStream _file;
    private long _remaining;
    private uint _crc;
    private bool _verified;

    public SnapshotReadStream(SnapshotInfo info)
    {
        _info = info;
        _file = new FileStream(info.FilePath, new FileStreamOptions
        {
            Mode = FileMode.Open,
            Access = FileAccess.Read,
            Share = FileShare.Read | FileShare.Delete,
            BufferSize = 0,
            Options = FileOptions.SequentialScan,
        });
        _file.Position = info.DataOffset;
        _remaining = info.DataLength;
    }

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => _info.DataLength;

    public override long Position
    {
        get => _info.DataLength - _remaining;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        if (buffer.IsEmpty) return 0;
        if (_remaining == 0)
        {
            Verify();
            return 0;
        }
        var want = (int)Math.Min(buffer.Length, _remaining);
        var n = _file.Read(buffer[..want]);
        return Consumed(buffer[..n]);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (buffer.IsEmpty) return 0;
        if (_remaining == 0)
        {
            Verify();
            return 0;
        }
        var want = (int)Math.Min(buffer.Length, _remaining);
        var n = await _file.ReadAsync(buffer[..want], cancellationToken).ConfigureAwait(false);
        return Consumed(buffer.Span[..n]);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private int Consumed(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty) throw new StorageCorruptException(_info.FilePath, _info.DataOffset + Position, "snapshot file ends before its data does");
        _crc = Crc32C.Append(_crc, data);
        _remaining -= data.Length;
        if (_remaining == 0) Verify();
        return data.Length;
    }

    private void Verify()
    {
        if (_verified) return;
        if (_crc != _info.DataChecksum) throw SnapshotFile.ChecksumMismatch(_info);
        _verified = true;
    }

    public override void Flush() { }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _file.Dispose();
        base.Dispose(disposing);
    }
}
