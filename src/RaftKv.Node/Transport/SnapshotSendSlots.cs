using RaftKv.Raft;
using RaftKv.Storage.Snapshots;

namespace RaftKv.Node.Transport;

/// <summary>What <see cref="SnapshotSendSlots.Request"/> decided.</summary>
internal enum SnapshotSlotDecision
{
    /// <summary>No transfer to the peer is running or waiting: start one now.</summary>
    Start,
    /// <summary>A transfer to the peer is running or waiting out its backoff: this request shares its outcome.</summary>
    Joined,
    /// <summary>The last transfer to the peer failed recently: start this one once the backoff has passed.</summary>
    Delayed,
}

/// <summary>
/// One outbound snapshot transfer per peer. A snapshot can take much longer to stream than an election timeout, and the
/// core asks again whenever it has heard nothing for that long; starting a stream for every ask multiplied the bytes
/// sent and written on the follower (7 concurrent streams of one 600 MB snapshot were seen). So a request while a
/// transfer runs joins it and gets its outcome; a transfer is never restarted while it makes progress (a stalled one
/// fails on the transport's write and ack timeouts); and after a failure the next one waits a backoff that doubles
/// with each further failure and resets on success.
/// </summary>
internal sealed class SnapshotSendSlots(TimeSpan minDelay, TimeSpan maxDelay)
{
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Slot> _slots = new(StringComparer.Ordinal);

    private enum SlotState
    {
        Idle,
        Waiting,
        Running,
    }

    private sealed class Slot
    {
        public SlotState State;
        public List<Action<bool>> Waiters = [];
        // The request to start when a backoff ends (the newest asked for while waiting).
        public Message? Message;
        public SnapshotInfo? Snapshot;
        public TimeSpan Backoff;
        public long RetryAt;
    }

    /// <summary>Transfers started so far (tests and diagnostics).</summary>
    public int Started { get; private set; }

    /// <summary>
    /// Registers a request to send <paramref name="snapshot"/> to <paramref name="message"/>.To; <paramref name="done"/>
    /// is called with the outcome of the transfer the request ends up in. On <see cref="SnapshotSlotDecision.Delayed"/>,
    /// the caller calls <see cref="StartWaiting"/> after <paramref name="delay"/>.
    /// </summary>
    public SnapshotSlotDecision Request(Message message, SnapshotInfo snapshot, Action<bool> done, out TimeSpan delay)
    {
        delay = TimeSpan.Zero;
        lock (_lock)
        {
            if (!_slots.TryGetValue(message.To, out var slot)) _slots[message.To] = slot = new Slot();
            slot.Waiters.Add(done);
            switch (slot.State)
            {
                case SlotState.Running:
                    return SnapshotSlotDecision.Joined;
                case SlotState.Waiting:
                    (slot.Message, slot.Snapshot) = (message, snapshot);
                    return SnapshotSlotDecision.Joined;
            }
            var wait = slot.RetryAt - Environment.TickCount64;
            if (wait > 0)
            {
                slot.State = SlotState.Waiting;
                (slot.Message, slot.Snapshot) = (message, snapshot);
                delay = TimeSpan.FromMilliseconds(wait);
                return SnapshotSlotDecision.Delayed;
            }
            slot.State = SlotState.Running;
            Started++;
            return SnapshotSlotDecision.Start;
        }
    }

    /// <summary>Starts the transfer that waited out its backoff: returns the newest request made meanwhile.</summary>
    public (Message Message, SnapshotInfo Snapshot) StartWaiting(string peerId)
    {
        lock (_lock)
        {
            var slot = _slots[peerId];
            if (slot.State != SlotState.Waiting) throw new InvalidOperationException($"no snapshot transfer to {peerId} is waiting");
            slot.State = SlotState.Running;
            Started++;
            var request = (slot.Message!, slot.Snapshot!);
            (slot.Message, slot.Snapshot) = (null, null);
            return request;
        }
    }

    /// <summary>Ends the transfer to <paramref name="peerId"/> (or its wait); returns the callbacks to tell the outcome.</summary>
    public List<Action<bool>> Finish(string peerId, bool succeeded)
    {
        lock (_lock)
        {
            if (!_slots.TryGetValue(peerId, out var slot)) return [];
            var waiters = slot.Waiters;
            slot.Waiters = [];
            slot.State = SlotState.Idle;
            (slot.Message, slot.Snapshot) = (null, null);
            if (succeeded)
            {
                slot.Backoff = TimeSpan.Zero;
                slot.RetryAt = 0;
            }
            else
            {
                slot.Backoff = slot.Backoff == TimeSpan.Zero ? minDelay : TimeSpan.FromTicks(Math.Min(maxDelay.Ticks, slot.Backoff.Ticks * 2));
                slot.RetryAt = Environment.TickCount64 + (long)slot.Backoff.TotalMilliseconds;
            }
            return waiters;
        }
    }

    /// <summary>How long a new transfer to <paramref name="peerId"/> would wait now (zero: none).</summary>
    public TimeSpan RetryDelay(string peerId)
    {
        lock (_lock)
        {
            if (!_slots.TryGetValue(peerId, out var slot)) return TimeSpan.Zero;
            return TimeSpan.FromMilliseconds(Math.Max(0, slot.RetryAt - Environment.TickCount64));
        }
    }
}
