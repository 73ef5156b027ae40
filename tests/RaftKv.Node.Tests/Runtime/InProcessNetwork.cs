using System.Collections.Concurrent;
using System.Threading.Channels;
using RaftKv.Node.Transport;
using RaftKv.Raft;
using RaftKv.Storage.Snapshots;

namespace RaftKv.Node.Tests.Runtime;

/// <summary>
/// A network inside the test process: each node's transport delivers to the others through ordered queues, with no
/// sockets. Lets the runtime tests run several nodes fast; the TCP transport has tests of its own.
/// </summary>
internal sealed class InProcessNetwork
{
    private readonly ConcurrentDictionary<string, Endpoint> _byAddress = new();

    /// <summary>Links cut by the test (both directions listed separately), by raft address.</summary>
    public ConcurrentDictionary<(string From, string To), bool> Cut { get; } = new();

    /// <summary>Messages for which this returns true are lost on the way (the sender thinks they left).</summary>
    public Func<Message, bool>? Drop { get; set; }

    public IRaftTransport Transport(string raftAddress) => new Endpoint(this, raftAddress);

    /// <summary>How long each snapshot transfer takes before its data reaches the receiver (a big or slow one).</summary>
    public TimeSpan SnapshotStall { get; set; }

    private int _snapshotsSent;

    /// <summary>Snapshot transfers started (each a full stream of the file).</summary>
    public int SnapshotsSent => Volatile.Read(ref _snapshotsSent);

    private sealed class Endpoint(InProcessNetwork network, string address) : IRaftTransport
    {
        private readonly Channel<Message> _inbox = Channel.CreateBounded<Message>(new BoundedChannelOptions(10_000) { FullMode = BoundedChannelFullMode.DropWrite });
        private readonly CancellationTokenSource _stop = new();
        private Dictionary<string, string> _peers = [];
        private readonly ConcurrentDictionary<string, string> _learned = new();
        private Action<Message>? _onMessage;
        private Func<Message, Stream, CancellationToken, Task>? _onSnapshot;
        private Task? _pump;

        public Task StartAsync(Action<Message> onMessage, Func<Message, Stream, CancellationToken, Task> onSnapshot, CancellationToken cancellationToken)
        {
            _onMessage = onMessage;
            _onSnapshot = onSnapshot;
            network._byAddress[address] = this;
            _pump = Task.Run(async () =>
            {
                try
                {
                    await foreach (var m in _inbox.Reader.ReadAllAsync(_stop.Token)) _onMessage(m);
                }
                catch (OperationCanceledException)
                {
                }
            });
            return Task.CompletedTask;
        }

        public void SetPeers(IReadOnlyDictionary<string, string> raftAddressById) => _peers = new Dictionary<string, string>(raftAddressById);

        private volatile string _clusterId = "";
        private ulong _incarnation;
        private readonly ConcurrentDictionary<string, string> _refusedBy = new();

        public void SetIdentity(string clusterId, ulong incarnation)
        {
            _clusterId = clusterId;
            _incarnation = incarnation;
        }

        public string? RefusedAsOtherCluster(string peerId, long sinceTick = long.MinValue) => _refusedBy.TryGetValue(peerId, out var c) ? c : null;

        public bool Send(Message message)
        {
            // Like the TCP transport's handshake, a receiver learns where the sender lives so it can answer it.
            if (!_peers.TryGetValue(message.To, out var to) && !_learned.TryGetValue(message.To, out to)) return false;
            if (network.Cut.ContainsKey((address, to))) return false;
            if (!network._byAddress.TryGetValue(to, out var peer)) return false;
            // As the TCP handshake: two clusters never exchange messages, and the receiver learns the sender's incarnation.
            if (_clusterId.Length > 0 && peer._clusterId.Length > 0 && _clusterId != peer._clusterId)
            {
                _refusedBy[message.To] = peer._clusterId;
                return false;
            }
            peer._learned[message.From] = address;
            if (network.Drop?.Invoke(message) == true) return true;
            return peer._inbox.Writer.TryWrite(message.WithFromIncarnation(_incarnation));
        }

        private Func<ReadOnlyMemory<byte>, CancellationToken, Task<byte[]>>? _onCall;

        public void SetCallHandler(Func<ReadOnlyMemory<byte>, CancellationToken, Task<byte[]>> handler) => _onCall = handler;

        public async Task<byte[]> CallAsync(string peerId, ReadOnlyMemory<byte> request, TimeSpan timeout, CancellationToken cancellationToken)
        {
            if (!_peers.TryGetValue(peerId, out var to) && !_learned.TryGetValue(peerId, out to)) throw new IOException($"no address for {peerId}");
            if (network.Cut.ContainsKey((address, to)) || !network._byAddress.TryGetValue(to, out var peer) || peer._onCall is null)
                throw new IOException($"{peerId} unreachable");
            return await peer._onCall(request.ToArray(), cancellationToken).WaitAsync(timeout, cancellationToken);
        }

        public void SendSnapshot(Message message, SnapshotInfo snapshot, Action<bool> done)
        {
            _ = Task.Run(async () =>
            {
                try
                {
                    if (!_peers.TryGetValue(message.To, out var to) || network.Cut.ContainsKey((address, to))
                        || !network._byAddress.TryGetValue(to, out var peer) || peer._onSnapshot is null)
                    {
                        done(false);
                        return;
                    }
                    Interlocked.Increment(ref network._snapshotsSent);
                    await using var stream = SnapshotStore.OpenRead(snapshot);
                    if (network.SnapshotStall > TimeSpan.Zero) await Task.Delay(network.SnapshotStall, peer._stop.Token);
                    await peer._onSnapshot(message, stream, peer._stop.Token);
                    done(true);
                }
                catch (Exception)
                {
                    done(false);
                }
            });
        }

        public async ValueTask DisposeAsync()
        {
            network._byAddress.TryRemove(address, out _);
            _stop.Cancel();
            if (_pump is not null) await _pump;
            _stop.Dispose();
        }
    }
}
