using System.Buffers.Binary;

namespace RaftKv.Node.StateMachine;

/// <summary>
/// Passes a snapshot arriving from the leader through unchanged while checking that it has the form
/// <see cref="KvStateMachine.WriteSnapshot"/> writes (a pair count, then that many pairs of length-prefixed strings,
/// and nothing after). A snapshot that does not would make <see cref="KvStateMachine.Restore"/> throw on the raft loop
/// after the log was already replaced by it, and again at every restart: it must be refused before it is stored.
/// Reading past a malformed part throws <see cref="InvalidDataException"/>, which fails the transfer.
/// </summary>
internal sealed class KvSnapshotCheck(Stream inner) : Stream
{
    // Where the parser is: the 8-byte count, a 4-byte length, or the bytes of a string.
    private enum Part { Count, Length, Text }

    private const int MaxStringBytes = 1 << 30; // as KvStateMachine.Restore accepts

    private readonly byte[] _header = new byte[8];
    private Part _part = Part.Count;
    private int _headerFilled;
    private long _textLeft;
    private long _stringsLeft;
    private bool _sawCount;

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

    public override int Read(byte[] buffer, int offset, int count) => Check(buffer.AsSpan(offset, inner.Read(buffer, offset, count)));

    public override int Read(Span<byte> buffer) => Check(buffer[..inner.Read(buffer)]);

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var n = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        return Check(buffer.Span[..n]);
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    /// <summary>Advances the parser over <paramref name="data"/>; at the end of the stream (no data) the snapshot must be complete.</summary>
    private int Check(ReadOnlySpan<byte> data)
    {
        if (data.IsEmpty)
        {
            if (_part != Part.Count || _headerFilled != 0 || _stringsLeft != 0 || !_sawCount)
                throw new InvalidDataException("the snapshot ends inside its data: it is not a key-value snapshot");
            return 0;
        }
        var read = data.Length;
        while (!data.IsEmpty)
        {
            if (_part == Part.Text)
            {
                var take = (int)Math.Min(_textLeft, data.Length);
                data = data[take..];
                _textLeft -= take;
                if (_textLeft == 0) NextString();
                continue;
            }
            if (_sawCount && _part == Part.Count) throw new InvalidDataException("bytes after the snapshot's last pair: it is not a key-value snapshot");
            var size = _part == Part.Count ? 8 : 4;
            var fill = Math.Min(size - _headerFilled, data.Length);
            data[..fill].CopyTo(_header.AsSpan(_headerFilled));
            data = data[fill..];
            _headerFilled += fill;
            if (_headerFilled < size) break;
            _headerFilled = 0;
            if (_part == Part.Count)
            {
                var pairs = BinaryPrimitives.ReadInt64LittleEndian(_header);
                if (pairs < 0 || pairs > long.MaxValue / 2) throw new InvalidDataException($"bad snapshot pair count {pairs}");
                _sawCount = true;
                _stringsLeft = pairs * 2;
                _part = _stringsLeft > 0 ? Part.Length : Part.Count;
            }
            else
            {
                var length = BinaryPrimitives.ReadInt32LittleEndian(_header);
                if (length is < 0 or > MaxStringBytes) throw new InvalidDataException($"bad snapshot string length {length}");
                _textLeft = length;
                _part = Part.Text;
                if (length == 0) NextString();
            }
        }
        return read;
    }

    private void NextString()
    {
        _stringsLeft--;
        _part = _stringsLeft > 0 ? Part.Length : Part.Count;
    }

    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
