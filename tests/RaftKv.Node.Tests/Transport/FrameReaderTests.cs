using System.Buffers.Binary;
using RaftKv.Node.Transport;

namespace RaftKv.Node.Tests.Transport;

public class FrameReaderTests
{
    private static byte[] Frames(params byte[][] payloads)
    {
        var ms = new MemoryStream();
        foreach (var p in payloads)
        {
            var len = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(len, (uint)p.Length);
            ms.Write(len);
            ms.Write(p);
        }
        return ms.ToArray();
    }

    [Fact]
    public async Task Frames_split_into_single_bytes_are_reassembled()
    {
        var rng = new Random(7);
        var payloads = Enumerable.Range(0, 20).Select(i => { var b = new byte[rng.Next(0, 300)]; rng.NextBytes(b); return b; }).ToArray();
        using var reader = new FrameReader(new TrickleStream(Frames(payloads), 1), 1 << 20);
        foreach (var p in payloads)
        {
            Assert.True(await reader.ReadFrameAsync(CancellationToken.None));
            Assert.Equal(p, reader.Current.ToArray());
        }
        Assert.False(await reader.ReadFrameAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_frame_larger_than_the_buffer_is_read_whole_then_small_frames_follow()
    {
        var big = new byte[3 << 20];
        new Random(8).NextBytes(big);
        using var reader = new FrameReader(new TrickleStream(Frames(big, [1, 2, 3]), 100_000), 4 << 20);
        Assert.True(await reader.ReadFrameAsync(CancellationToken.None));
        Assert.True(reader.Current.Span.SequenceEqual(big));
        Assert.True(await reader.ReadFrameAsync(CancellationToken.None));
        Assert.Equal(new byte[] { 1, 2, 3 }, reader.Current.ToArray());
        Assert.False(await reader.ReadFrameAsync(CancellationToken.None));
    }

    [Fact]
    public async Task An_oversized_length_is_refused_without_reading_the_payload()
    {
        var header = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(header, 1025);
        using var reader = new FrameReader(new MemoryStream(header), 1024);
        await Assert.ThrowsAsync<InvalidDataException>(async () => await reader.ReadFrameAsync(CancellationToken.None));

        BinaryPrimitives.WriteUInt32LittleEndian(header, uint.MaxValue);
        using var reader2 = new FrameReader(new MemoryStream(header), 1024);
        await Assert.ThrowsAsync<InvalidDataException>(async () => await reader2.ReadFrameAsync(CancellationToken.None));
    }

    [Fact]
    public async Task A_stream_ending_inside_a_frame_throws()
    {
        var whole = Frames(new byte[100]);
        for (var cut = 1; cut < whole.Length; cut += 7)
        {
            using var reader = new FrameReader(new MemoryStream(whole[..cut]), 1024);
            await Assert.ThrowsAsync<EndOfStreamException>(async () => await reader.ReadFrameAsync(CancellationToken.None));
        }
    }

    /// <summary>A stream that returns at most <c>chunk</c> bytes per read, like a slow socket.</summary>
    private sealed class TrickleStream(byte[] data, int chunk) : Stream
    {
        private int _pos;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => data.Length;
        public override long Position { get => _pos; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var n = Math.Min(Math.Min(chunk, buffer.Length), data.Length - _pos);
            data.AsSpan(_pos, n).CopyTo(buffer);
            _pos += n;
            return n;
        }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => new(Read(buffer.Span));
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
