namespace RaftKv.Node.Runtime;

/// <summary>
/// Counts the client requests (writes, reads, status calls) waiting for the raft loop to take them, and the bytes of
/// the commands among them, against <see cref="NodeOptions.MaxQueuedRequests"/> and <see cref="NodeOptions.MaxQueuedBytes"/>.
/// While the loop is stalled (a slow or hung disk) requests would otherwise pile up without limit; beyond the bound a
/// request is refused at once as busy, and the client retries later.
/// </summary>
internal sealed class RequestQueueBound(int maxRequests, long maxBytes)
{
    private int _requests;
    private long _bytes;

    /// <summary>Requests queued now.</summary>
    public int Requests => Volatile.Read(ref _requests);

    /// <summary>
    /// Counts a request of <paramref name="bytes"/> in, unless the queue is full. A request larger than the byte bound
    /// alone is let in when no other bytes are queued, so no request is refused forever for its size alone (sizes are
    /// limited where requests come in).
    /// </summary>
    public bool TryEnter(long bytes)
    {
        if (Interlocked.Increment(ref _requests) > maxRequests)
        {
            Interlocked.Decrement(ref _requests);
            return false;
        }
        if (bytes > 0)
        {
            var total = Interlocked.Add(ref _bytes, bytes);
            if (total > maxBytes && total != bytes)
            {
                Leave(bytes);
                return false;
            }
        }
        return true;
    }

    /// <summary>Counts a request out: the loop took it, or it was failed.</summary>
    public void Leave(long bytes)
    {
        Interlocked.Decrement(ref _requests);
        if (bytes > 0) Interlocked.Add(ref _bytes, -bytes);
    }

    /// <summary>The refusal a caller gets when <see cref="TryEnter"/> says no.</summary>
    public NodeException Full() => new(NodeErrorKind.Busy,
        $"too many requests are waiting for this node's raft loop (at most {maxRequests} requests and {maxBytes} bytes of writes may wait; a slow disk is the usual cause)");
}
