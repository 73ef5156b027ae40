using RaftKv.Raft;

namespace RaftKv.Node.Runtime;

/// <summary>
/// Flushes the log's background syncs off the raft loop: a thread in a node (<see cref="BackgroundSyncer"/>), the
/// simulated disk in the simulator. Each flush is reported with <see cref="ReadyProcessor.SyncsCompleted"/>, and a
/// failure with <see cref="ReadyProcessor.SyncFailed"/>.
/// </summary>
internal interface ISyncFlusher
{
    /// <summary>Asks for <paramref name="sync"/> (sequence number <paramref name="seq"/>, increasing) to be flushed.</summary>
    void Request(IBackgroundSync sync, long seq);

    /// <summary>Blocks until every sync up to <paramref name="seq"/> is flushed.</summary>
    /// <exception cref="IOException">A flush failed: nothing since the last good one is known to be durable.</exception>
    void WaitFor(long seq);
}
