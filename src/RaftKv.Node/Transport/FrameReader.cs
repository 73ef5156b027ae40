using System.Buffers;
using System.Buffers.Binary;

namespace RaftKv.Node.Transport;

/// <summary>
/// Reads length-prefixed frames (u32 little-endian payload length, then the payload) from a stream into a pooled buffer,
/// so that many small frames arriving together cost one socket read.
/// </summary>
/// <remarks>
/// The buffer grows geometrically as a large frame's bytes actually arrive, never straight to the declared length: a peer
/// that announces a 64 MiB frame and sends nothing more makes us hold at most twice what it sent.
/// </remarks>
internal sealed class FrameReader : IDisposable
{
    internal const int InitialBufferSize = 64 << 10;

    // Past this size the buffer goes back to the pool once it is empty, so one big message does not pin memory forever.
    private const int ShrinkAbove = 1 << 20;

    private readonly Stream _stream;
    private readonly int _maxFrameSize;
    private byte[] _buffer;
    private int _start;
    private int _end;
    private bool _disposed;

    public FrameReader(Stream stream, int maxFrameSize)
    {
        _stream = stream;
        _maxFrameSize = maxFrameSize;
        _buffer = ArrayPool<byte>.Shared.Rent(InitialBufferSize);
    }

    /// <summary>The payload of the frame last read; valid until the next read.</summary>
    public ReadOnlyMemory<byte> Current { get; private set; }

    /// <summary>
    /// Reads the next frame into <see cref="Current"/>. False when the stream ended cleanly between frames.
    /// </summary>
    /// <exception cref="InvalidDataException">The length prefix exceeds the maximum frame size.</exception>
    /// <exception cref="EndOfStreamException">The stream ended inside a frame.</exception>
    public async ValueTask<bool> ReadFrameAsync(CancellationToken cancellationToken)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Current = default;
        if (_start == _end && _buffer.Length > ShrinkAbove)
        {
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = ArrayPool<byte>.Shared.Rent(InitialBufferSize);
            _start = _end = 0;
        }
        while (true)
        {
            var available = _end - _start;
            int need;
            if (available >= 4)
            {
                var length = BinaryPrimitives.ReadUInt32LittleEndian(_buffer.AsSpan(_start));
                if (length > (uint)_maxFrameSize) throw new InvalidDataException($"frame of {length} bytes exceeds the {_maxFrameSize}-byte limit");
                need = 4 + (int)length;
                if (available >= need)
                {
                    Current = new ReadOnlyMemory<byte>(_buffer, _start + 4, (int)length);
                    _start += need;
                    if (_start == _end) _start = _end = 0;
                    return true;
                }
            }
            else
            {
                need = 4;
            }

            if (_buffer.Length - _start < need && _start > 0)
            {
                // Move the partial frame to the front before reading more.
                _buffer.AsSpan(_start, available).CopyTo(_buffer);
                _start = 0;
                _end = available;
            }
            if (_end == _buffer.Length)
            {
                var grown = ArrayPool<byte>.Shared.Rent((int)Math.Min((long)_buffer.Length * 2, need));
                _buffer.AsSpan(_start, available).CopyTo(grown);
                ArrayPool<byte>.Shared.Return(_buffer);
                _buffer = grown;
                _start = 0;
                _end = available;
            }

            var n = await _stream.ReadAsync(_buffer.AsMemory(_end), cancellationToken).ConfigureAwait(false);
            if (n == 0)
            {
                if (available == 0) return false;
                throw new EndOfStreamException($"connection closed inside a frame ({available} of {need} bytes received)");
            }
            _end += n;
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Current = default;
        ArrayPool<byte>.Shared.Return(_buffer);
        _buffer = [];
    }
}
