namespace RaftKv.Raft;

/// <summary>
/// Append messages sent to one follower and not yet acknowledged: a ring of (last index, bytes) bounded by count and
/// by bytes, so pipelining never floods a slow follower (flow control for the Replicate state).
/// </summary>
internal sealed class Inflights
{
    private readonly ulong[] _index;
    private readonly long[] _bytes;
    private readonly long _maxBytes;
    private int _start;

    public Inflights(int capacity, long maxBytes)
    {
        _index = new ulong[capacity];
        _bytes = new long[capacity];
        _maxBytes = maxBytes;
    }

    public int Count { get; private set; }

    public long Bytes { get; private set; }

    public bool Full => Count == _index.Length || (_maxBytes > 0 && Bytes >= _maxBytes);

    public void Add(ulong lastIndex, long bytes)
    {
        if (Count == _index.Length) throw new InvalidOperationException("inflights full");
        var slot = (_start + Count) % _index.Length;
        _index[slot] = lastIndex;
        _bytes[slot] = bytes;
        Count++;
        Bytes += bytes;
    }

    /// <summary>Frees every message whose last index is at or below <paramref name="index"/>: the follower has them.</summary>
    public void FreeUpTo(ulong index)
    {
        while (Count > 0 && _index[_start] <= index)
        {
            Bytes -= _bytes[_start];
            _start = (_start + 1) % _index.Length;
            Count--;
        }
        if (Count == 0) _start = 0;
    }

    /// <summary>Frees the oldest message (a heartbeat answer proves the follower is alive; keep the pipe moving).</summary>
    public void FreeOldest()
    {
        if (Count > 0) FreeUpTo(_index[_start]);
    }

    public void Reset()
    {
        Count = 0;
        Bytes = 0;
        _start = 0;
    }
}
