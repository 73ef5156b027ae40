using System.Collections.Concurrent;
using System.Diagnostics;
using RaftKv.Node.Transport;
using RaftKv.Raft;
using RaftKv.Storage.Snapshots;

namespace RaftKv.Routing.Bench;

/// <summary>A node's raft transport, noting when each heartbeat arrives before the node sees it.</summary>
internal sealed class HeartbeatClock(IRaftTransport inner) : IRaftTransport
{
    private ConcurrentQueue<long> _arrivals = new();

    /// <summary>Stopwatch timestamps of the heartbeats received since the last call, oldest first.</summary>
    public long[] TakeArrivals() => Interlocked.Exchange(ref _arrivals, new ConcurrentQueue<long>()).ToArray();

    public Task StartAsync(Action<Message> onMessage, Func<Message, Stream, CancellationToken, Task> onSnapshot, CancellationToken cancellationToken) =>
        inner.StartAsync(m =>
        {
            if (m.Type == MessageType.Heartbeat) _arrivals.Enqueue(Stopwatch.GetTimestamp());
            onMessage(m);
        }, onSnapshot, cancellationToken);

    public void SetPeers(IReadOnlyDictionary<string, string> raftAddressById) => inner.SetPeers(raftAddressById);
    public void SetIdentity(string clusterId, ulong incarnation) => inner.SetIdentity(clusterId, incarnation);
    public string? RefusedAsOtherCluster(string peerId, long sinceTick = long.MinValue) => inner.RefusedAsOtherCluster(peerId, sinceTick);
    public bool Send(Message message) => inner.Send(message);
    public void SetCallHandler(Func<ReadOnlyMemory<byte>, CancellationToken, Task<byte[]>> handler) => inner.SetCallHandler(handler);
    public Task<byte[]> CallAsync(string peerId, ReadOnlyMemory<byte> request, TimeSpan timeout, CancellationToken cancellationToken) =>
        inner.CallAsync(peerId, request, timeout, cancellationToken);
    public void SendSnapshot(Message message, SnapshotInfo snapshot, Action<bool> done) => inner.SendSnapshot(message, snapshot, done);
    public ValueTask DisposeAsync() => inner.DisposeAsync();
}
