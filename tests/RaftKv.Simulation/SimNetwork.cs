using RaftKv.Node.Runtime;
using RaftKv.Raft;

namespace RaftKv.Simulation;

/// <summary>
/// A message in flight, with the snapshot bytes that travel beside an InstallSnapshot, the incarnation of the process
/// that sent it (what the real transport's connection announced in its handshake: a message a node sent before it lost
/// its data still arrives as its previous incarnation's), and the runtime that sent it (to report a transfer's outcome to).
/// </summary>
internal sealed record Envelope(Message Message, byte[]? SnapshotData, ulong FromIncarnation, ReadyProcessor? Sender = null);

/// <summary>
/// The simulated network: random delay (and so reordering), now and then a very long one, loss, duplication, and
/// partitions, symmetric or one-way.
/// Everything is decided by the cluster's single random generator.
/// </summary>
internal sealed class SimNetwork(Random random, SimOptions options)
{
    private readonly PriorityQueue<Envelope, (long Time, long Seq)> _queue = new();
    private readonly HashSet<(string From, string To)> _blocked = [];
    private long _seq;

    public bool Faulty { get; set; } = true;

    public int InFlight => _queue.Count;

    /// <summary>Called for every message the network loses (dropped, or stopped by a partition).</summary>
    public Action<Envelope>? Lost { get; set; }

    public void Send(long now, Envelope e)
    {
        var m = e.Message;
        if (_blocked.Contains((m.From, m.To)))
        {
            Lost?.Invoke(e);
            return;
        }
        if (Faulty && random.NextDouble() < options.DropRate)
        {
            Lost?.Invoke(e);
            return;
        }
        var copies = Faulty && random.NextDouble() < options.DuplicateRate ? 2 : 1;
        for (var i = 0; i < copies; i++)
        {
            var delay = 1 + random.Next(Faulty ? options.MaxDelay : 3);
            if (Faulty && options.SlowMessageRate > 0 && random.NextDouble() < options.SlowMessageRate) delay += random.Next(10 * options.MaxDelay + 100);
            _queue.Enqueue(e, (now + delay, _seq++));
        }
    }

    /// <summary>Messages due at or before <paramref name="now"/>, in delivery order.</summary>
    public IEnumerable<Envelope> Due(long now)
    {
        while (_queue.TryPeek(out var e, out var at) && at.Time <= now)
        {
            _queue.Dequeue();
            // A partition that formed while the message was in flight still stops it.
            if (_blocked.Contains((e.Message.From, e.Message.To)))
            {
                Lost?.Invoke(e);
                continue;
            }
            yield return e;
        }
    }

    public void Block(string from, string to) => _blocked.Add((from, to));

    public void HealAll() => _blocked.Clear();

    public bool HasPartition => _blocked.Count > 0;
}
