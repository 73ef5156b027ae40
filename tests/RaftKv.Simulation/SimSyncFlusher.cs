using RaftKv.Node.Runtime;
using RaftKv.Raft;

namespace RaftKv.Simulation;

/// <summary>
/// The ISyncFlusher of a simulated node, in place of raftkvd's sync thread: each background sync finishes after a
/// random delay (in order, as one thread flushing them would), and may fail. The cluster calls
/// <see cref="CompleteDue"/> every step; <see cref="WaitFor"/> (the processor draining its syncs) finishes them at once.
/// </summary>
internal sealed class SimSyncFlusher(SimDisk disk, Random rng, int maxDelay) : ISyncFlusher
{
    private readonly Queue<(long Seq, IBackgroundSync Sync, long Due)> _requested = new();

    /// <summary>The time now, set by the cluster before it hands the processor anything.</summary>
    public long Now { get; set; }

    public int Count => _requested.Count;

    public void Request(IBackgroundSync sync, long seq) => _requested.Enqueue((seq, sync, Now + rng.Next(maxDelay + 1)));

    public void WaitFor(long seq) => Flush(s => s.Seq <= seq);

    /// <summary>Flushes the syncs due by now; returns the newest one flushed (report it to the processor), or null.</summary>
    public (long Seq, IBackgroundSync Sync)? CompleteDue(long now) => Flush(s => s.Due <= now);

    private (long Seq, IBackgroundSync Sync)? Flush(Func<(long Seq, IBackgroundSync Sync, long Due), bool> ready)
    {
        (long Seq, IBackgroundSync Sync)? newest = null;
        while (_requested.TryPeek(out var s) && ready(s))
        {
            _requested.Dequeue();
            newest = (s.Seq, s.Sync);
        }
        if (newest is not { } n) return null;
        // One flush of the newest covers the ones before it, as one fdatasync does.
        if (disk.NextFlushFails()) throw new SimulatedDiskFailure();
        n.Sync.Flush();
        return newest;
    }
}
