using RaftKv.Raft;

namespace RaftKv.Node.Runtime;

/// <summary>
/// The thread that flushes the WAL to the device while the raft loop goes on stepping the core (see
/// <see cref="RaftOptions.AsyncStorageSync"/>): the <see cref="ISyncFlusher"/> of a real node. The loop hands it each turn's sync with a sequence number;
/// it flushes the newest one it has (one fdatasync covers every write before it, so syncs asked for during a flush
/// are grouped into the next) and reports the sequence number it reached.
/// </summary>
internal sealed class BackgroundSyncer : ISyncFlusher, IDisposable
{
    // A plain object: Monitor.Wait and Pulse need one.
    private readonly object _lock = new();
    private readonly Thread _thread;
    private readonly Action<long, IBackgroundSync> _synced;
    private readonly Action<Exception> _failed;
    private readonly Action<IBackgroundSync> _flush;
    private IBackgroundSync? _newest;
    private long _requested;
    private long _done;
    private Exception? _error;
    private bool _stopping;

    /// <param name="name">Names the thread (the node id).</param>
    /// <param name="synced">Called on the syncer's thread after each flush, with the sequence number reached and the sync flushed.</param>
    /// <param name="failed">Called once on the syncer's thread if a flush fails; the syncer then stops.</param>
    /// <param name="flush">Replaces <see cref="IBackgroundSync.Flush"/> (tests make it hang).</param>
    public BackgroundSyncer(string name, Action<long, IBackgroundSync> synced, Action<Exception> failed, Action<IBackgroundSync>? flush = null)
    {
        _synced = synced;
        _failed = failed;
        _flush = flush ?? (static s => s.Flush());
        _thread = new Thread(Run) { IsBackground = true, Name = "wal-sync " + name };
        _thread.Start();
    }

    /// <summary>Asks for <paramref name="sync"/> (sequence number <paramref name="seq"/>, increasing) to be flushed.</summary>
    public void Request(IBackgroundSync sync, long seq)
    {
        lock (_lock)
        {
            _newest = sync;
            _requested = seq;
            Monitor.Pulse(_lock);
        }
    }

    /// <summary>Blocks until every sync up to <paramref name="seq"/> is flushed.</summary>
    /// <exception cref="IOException">A flush failed: nothing since the last good one is known to be durable.</exception>
    public void WaitFor(long seq)
    {
        lock (_lock)
        {
            while (_done < seq && _error is null && !_stopping) Monitor.Wait(_lock);
            if (_error is not null) throw new IOException("syncing the WAL failed: " + _error.Message, _error);
            if (_done < seq) throw new ObjectDisposedException(nameof(BackgroundSyncer));
        }
    }

    private void Run()
    {
        while (true)
        {
            IBackgroundSync sync;
            long seq;
            lock (_lock)
            {
                while (_requested == _done && !_stopping) Monitor.Wait(_lock);
                if (_stopping) return;
                sync = _newest!;
                seq = _requested;
            }
            try
            {
                _flush(sync);
            }
            catch (Exception e)
            {
                lock (_lock)
                {
                    _error = e;
                    Monitor.PulseAll(_lock);
                }
                _failed(e);
                return;
            }
            lock (_lock)
            {
                _done = seq;
                Monitor.PulseAll(_lock);
            }
            _synced(seq, sync);
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            _stopping = true;
            Monitor.PulseAll(_lock);
        }
        // A flush stuck on a hung disk must not hang shutdown; the thread is a background one.
        _thread.Join(TimeSpan.FromSeconds(10));
    }
}
