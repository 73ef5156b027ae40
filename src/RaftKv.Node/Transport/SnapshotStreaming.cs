using System.Buffers;
using System.Buffers.Binary;
using RaftKv.Storage;

namespace RaftKv.Node.Transport;

/// <summary>
/// The snapshot connection's format, after the handshake:
/// <code>
/// header frame: u64 dataLength | the InstallSnapshot message (MessageCodec)
/// data frames:  u8 1 | up to SnapshotChunkSize bytes of data
/// end frame:    u8 2 | u64 dataLength | u32 CRC32C of the data
/// ack (receiver to sender, one byte): 0 stored, 1 failed
/// </code>
/// The end frame's length and checksum are what let the receiver tell a complete snapshot from one cut short or
/// damaged on the way; only then does its stream report the end.
/// </summary>
internal static class SnapshotFrames
{
    public const byte Data = 1;
    public const byte End = 2;
    public const int EndLength = 1 + 8 + 4;
    public const byte AckStored = 0;
    public const byte AckFailed = 1;
}

/// <summary>
/// The stream an inbound snapshot handler reads: exactly the snapshot's bytes. It reports the end (returns 0) only after
/// the sender's end frame arrived and the length and checksum match; a connection cut short, a timeout, or a damaged
/// transfer throws instead, so a half-received snapshot can never be stored as complete.
/// </summary>
internal sealed class SnapshotReceiveStream : Stream
{
    private readonly FrameReader _frames;
    private readonly TimeSpan _readTimeout;
    private readonly CancellationToken _cancellation;
    private readonly long _declaredLength;
    private ReadOnlyMemory<byte> _chunk;
    private long _received;
    private uint _crc;

    public SnapshotReceiveStream(FrameReader frames, long declaredLength, TimeSpan readTimeout, CancellationToken cancellation)
    {
        _frames = frames;
        _declaredLength = declaredLength;
        _readTimeout = readTimeout;
        _cancellation = cancellation;
    }

    /// <summary>True once the end frame was received and verified.</summary>
    public bool Completed { get; private set; }

    /// <summary>Set when the stream failed; every later read throws it again so a handler cannot mistake a retry for an end.</summary>
    private Exception? _failure;

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => _declaredLength;

    public override long Position
    {
        get => _received - _chunk.Length;
        set => throw new NotSupportedException();
    }

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer)
    {
        // Synchronous readers are served by blocking on the asynchronous path; every wait in it has a timeout.
        var rented = ArrayPool<byte>.Shared.Rent(buffer.Length);
        try
        {
            var n = ReadAsync(rented.AsMemory(0, buffer.Length)).AsTask().GetAwaiter().GetResult();
            rented.AsSpan(0, n).CopyTo(buffer);
            return n;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        if (_failure is not null) throw new IOException("the snapshot transfer failed", _failure);
        if (buffer.IsEmpty) return 0;
        try
        {
            while (_chunk.IsEmpty)
            {
                if (Completed) return 0;
                await NextFrameAsync(cancellationToken).ConfigureAwait(false);
            }
            var n = Math.Min(buffer.Length, _chunk.Length);
            _chunk.Span[..n].CopyTo(buffer.Span);
            _chunk = _chunk[n..];
            return n;
        }
        catch (Exception e)
        {
            _failure = e;
            if (e is IOException or OperationCanceledException) throw;
            // Malformed frames surface as IOException: to the handler it is a broken transfer like any other.
            throw new IOException("the snapshot transfer failed: " + e.Message, e);
        }
    }

    private async ValueTask NextFrameAsync(CancellationToken cancellationToken)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _cancellation);
        timeout.CancelAfter(_readTimeout);
        bool got;
        try
        {
            got = await _frames.ReadFrameAsync(timeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && !_cancellation.IsCancellationRequested)
        {
            throw new TimeoutException($"no snapshot data for {_readTimeout.TotalSeconds:0} s");
        }
        if (!got) throw new EndOfStreamException($"the sender closed the connection after {_received} of {_declaredLength} snapshot bytes");
        var frame = _frames.Current;
        if (frame.IsEmpty) throw new InvalidDataException("empty snapshot frame");
        switch (frame.Span[0])
        {
            case SnapshotFrames.Data:
                var data = frame[1..];
                if (_received + data.Length > _declaredLength) throw new InvalidDataException($"snapshot data exceeds the declared {_declaredLength} bytes");
                _crc = Crc32C.Append(_crc, data.Span);
                _received += data.Length;
                _chunk = data;
                break;
            case SnapshotFrames.End:
                if (frame.Length != SnapshotFrames.EndLength) throw new InvalidDataException("malformed snapshot end frame");
                var length = BinaryPrimitives.ReadInt64LittleEndian(frame.Span[1..]);
                var crc = BinaryPrimitives.ReadUInt32LittleEndian(frame.Span[9..]);
                if (length != _declaredLength || _received != _declaredLength) throw new InvalidDataException($"snapshot ended after {_received} bytes; {_declaredLength} were announced and {length} claimed");
                if (crc != _crc) throw new InvalidDataException("snapshot data checksum mismatch: damaged in transit");
                Completed = true;
                break;
            default:
                throw new InvalidDataException($"unknown snapshot frame kind {frame.Span[0]}");
        }
    }

    public override void Flush() { }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
