using System.Buffers;
using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Microsoft.Extensions.Logging;
using RaftKv.Raft;
using RaftKv.Storage;
using RaftKv.Storage.Snapshots;

namespace RaftKv.Node.Transport;

/// <summary>
/// The raft transport over TCP: one persistent outbound connection per peer carrying length-prefixed message frames
/// (see <see cref="MessageCodec"/>), a separate short-lived connection per snapshot, and a listener that accepts both.
/// </summary>
/// <remarks>
/// <para>Wire format. Every connection opens with a handshake (magic <c>RKVT</c>, protocol version, connection kind, the
/// caller's node id) that the listener answers; anything else (a port scanner, an HTTP client) is refused and closed
/// without disturbing the listener. A message connection then carries frames one way: <c>u32 length | payload</c>,
/// little-endian, the payload at most <see cref="TransportOptions.MaxFrameSize"/> bytes. A snapshot connection carries a
/// header frame, data chunks and an end frame with the length and CRC32C, and the receiver answers with a one-byte
/// acknowledgement once its handler has stored the data.</para>
/// <para>Threads. <see cref="Send"/>, <see cref="SetPeers"/> and <see cref="SendSnapshot"/> never wait on the network:
/// each peer has a bounded queue drained by its own writer task. Inbound messages and snapshots are delivered on
/// transport threads.</para>
/// <para>The listener is bound by the constructor, so <see cref="LocalEndPoint"/> is known (port 0 resolved) before
/// <see cref="StartAsync"/>; connections that arrive before then wait in the accept backlog.</para>
/// </remarks>
public sealed partial class TcpTransport : IRaftTransport
{
    private readonly TransportOptions _options;
    private readonly ILogger _logger;
    private readonly Socket _listener;
    private readonly CancellationTokenSource _shutdown = new();
    private readonly Lock _peersLock = new();
    private readonly ConcurrentDictionary<Task, byte> _background = new();
    private readonly ConcurrentDictionary<Socket, byte> _inbound = new();
    private volatile Dictionary<string, PeerConnection> _peers = new(StringComparer.Ordinal);
    // Addresses callers announced in their handshakes, and connections opened to answer them (ids not in _peers only).
    private readonly Dictionary<string, string> _learned = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, PeerConnection> _learnedConnections = new(StringComparer.Ordinal);
    private readonly LocalIdentity _identity;
    // Refusals of callers from another cluster, logged at most once a minute per caller.
    private readonly ConcurrentDictionary<string, long> _refusalLogged = new(StringComparer.Ordinal);
    private Func<ReadOnlyMemory<byte>, CancellationToken, Task<byte[]>>? _onCall;
    private Action<Message>? _onMessage;
    private Func<Message, Stream, CancellationToken, Task>? _onSnapshot;
    private readonly SnapshotSendSlots _snapshotSlots;
    private int _started;
    private int _disposed;

    /// <summary>Creates the transport and binds its listener (it accepts nothing until <see cref="StartAsync"/>).</summary>
    /// <param name="localId">This node's id: stamped on outbound handshakes, and inbound messages addressed elsewhere are dropped.</param>
    /// <param name="listenAddress">"host:port" to listen on; port 0 picks a free port (read it from <see cref="LocalEndPoint"/>), an empty host or "0.0.0.0" every IPv4 interface.</param>
    /// <param name="logger">Where connection failures and refused clients are reported.</param>
    /// <param name="options">Limits and timeouts; <see cref="TransportOptions.Default"/> when null.</param>
    /// <param name="advertiseAddress">
    /// The raft address other nodes reach this one at, announced in every handshake so a node can answer a caller it has
    /// no configuration for yet. Default: <see cref="LocalAddress"/>. A wildcard host (0.0.0.0, ::) is replaced by
    /// receivers with the address the connection came from.
    /// </param>
    /// <exception cref="FormatException">The listen or advertise address is not host:port.</exception>
    /// <exception cref="SocketException">The address cannot be bound (in use, not local).</exception>
    public TcpTransport(string localId, string listenAddress, ILogger logger, TransportOptions? options = null, string? advertiseAddress = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(localId);
        ArgumentNullException.ThrowIfNull(listenAddress);
        ArgumentNullException.ThrowIfNull(logger);
        _options = options ?? TransportOptions.Default;
        _options.Validate();
        _snapshotSlots = new SnapshotSendSlots(_options.SnapshotRetryMinDelay, _options.SnapshotRetryMaxDelay);
        _logger = logger;
        LocalId = localId;
        if (advertiseAddress is not null && !NetworkAddress.TryParse(advertiseAddress, out _, out _))
        {
            throw new FormatException($"advertise address '{advertiseAddress}' is not of the form host:port");
        }

        var endPoint = TransportSockets.ResolveListenEndPoint(listenAddress);
        _listener = new Socket(endPoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            if (endPoint.AddressFamily == AddressFamily.InterNetworkV6 && endPoint.Address.Equals(IPAddress.IPv6Any)) _listener.DualMode = true;
            // No ReuseAddress: on Linux .NET maps it to SO_REUSEPORT as well, which would let a second raftkvd bind the
            // same port and take half the peers' connections. A restarted node can still bind while connections of its
            // previous life sit in TIME_WAIT: .NET sets plain SO_REUSEADDR on every listening socket on Unix.
            _listener.Bind(endPoint);
            _listener.Listen(512);
        }
        catch
        {
            _listener.Dispose();
            throw;
        }
        LocalEndPoint = (IPEndPoint)_listener.LocalEndPoint!;
        LocalAddress = TransportSockets.Format(LocalEndPoint);
        AdvertisedAddress = advertiseAddress ?? LocalAddress;
        try
        {
            _identity = new LocalIdentity(localId, AdvertisedAddress);
        }
        catch
        {
            _listener.Dispose();
            throw;
        }
    }

    /// <summary>This node's id.</summary>
    public string LocalId { get; }

    /// <summary>
    /// The local endpoint a transport bound to <paramref name="listenAddress"/> listens on: a host name resolves once,
    /// to its first IPv4 address if it has one (raftkvd checks that endpoint is free before it starts anything).
    /// </summary>
    /// <exception cref="FormatException">Not host:port, or a name that resolves to nothing.</exception>
    public static IPEndPoint ListenEndPoint(string listenAddress) => TransportSockets.ResolveListenEndPoint(listenAddress);

    /// <summary>The bound listen endpoint, with the actual port when 0 was asked for.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary><see cref="LocalEndPoint"/> as "host:port" (IPv6 in brackets). For a wildcard listen address, peers need a routable host instead.</summary>
    public string LocalAddress { get; }

    /// <summary>The raft address announced to the nodes this one connects to.</summary>
    public string AdvertisedAddress { get; }

    /// <inheritdoc />
    public Task StartAsync(Action<Message> onMessage, Func<Message, Stream, CancellationToken, Task> onSnapshot, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(onMessage);
        ArgumentNullException.ThrowIfNull(onSnapshot);
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        cancellationToken.ThrowIfCancellationRequested();
        if (Interlocked.Exchange(ref _started, 1) != 0) throw new InvalidOperationException("the transport is already started");
        _onMessage = onMessage;
        _onSnapshot = onSnapshot;
        Track(Task.Run(AcceptLoopAsync, CancellationToken.None));
        _logger.LogInformation("Raft transport {LocalId}: listening on {Address}", LocalId, LocalAddress);
        return Task.CompletedTask;
    }

    /// <inheritdoc />
    public void SetPeers(IReadOnlyDictionary<string, string> raftAddressById)
    {
        ArgumentNullException.ThrowIfNull(raftAddressById);
        lock (_peersLock)
        {
            if (Volatile.Read(ref _disposed) != 0) return;
            var current = _peers;
            var next = new Dictionary<string, PeerConnection>(StringComparer.Ordinal);
            foreach (var (id, address) in raftAddressById)
            {
                if (id == LocalId || string.IsNullOrEmpty(id)) continue;
                if (current.TryGetValue(id, out var existing) && existing.Address == address)
                {
                    next[id] = existing;
                    continue;
                }
                if (_learnedConnections.TryRemove(id, out var answering))
                {
                    // The configuration now names a node we were answering at its announced address: keep that
                    // connection if the addresses agree; the configuration wins if they do not.
                    if (answering.Address == address)
                    {
                        next[id] = answering;
                        continue;
                    }
                    Retire(answering);
                }
                EndPoint endPoint;
                try
                {
                    endPoint = TransportSockets.ParsePeerEndPoint(address);
                }
                catch (FormatException e)
                {
                    // Messages to this peer will be refused by Send, which the raft loop sees as a drop.
                    _logger.LogError("Raft transport {LocalId}: ignoring peer {PeerId}: {Error}", LocalId, id, e.Message);
                    continue;
                }
                next[id] = new PeerConnection(LocalId, _identity, id, address, endPoint, _options, _logger, _shutdown.Token);
            }
            foreach (var (id, old) in current)
            {
                if (next.TryGetValue(id, out var kept) && ReferenceEquals(kept, old)) continue;
                // Removed, or its address changed (a fresh connection replaces it): close without waiting here.
                Retire(old);
            }
            _peers = next;
        }
    }

    /// <inheritdoc />
    public void SetIdentity(string clusterId, ulong incarnation) => _identity.Set(clusterId, incarnation);

    /// <inheritdoc />
    public string? RefusedAsOtherCluster(string peerId, long sinceTick = long.MinValue) =>
        _identity.RefusedBy.TryGetValue(peerId, out var refusal) && refusal.Tick >= sinceTick ? refusal.ClusterId : null;

    /// <inheritdoc />
    public bool Send(Message message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (Volatile.Read(ref _disposed) != 0) return false;
        return FindConnection(message.To) is { } peer && peer.TryEnqueue(message);
    }

    /// <inheritdoc />
    /// <remarks>
    /// One transfer per peer at a time (<see cref="SnapshotSendSlots"/>): a request while one runs shares its outcome,
    /// and after a failure the next transfer waits out a backoff (<see cref="TransportOptions.SnapshotRetryMinDelay"/>).
    /// </remarks>
    public void SendSnapshot(Message message, SnapshotInfo snapshot, Action<bool> done)
    {
        ArgumentNullException.ThrowIfNull(message);
        ArgumentNullException.ThrowIfNull(snapshot);
        ArgumentNullException.ThrowIfNull(done);
        var peer = Volatile.Read(ref _disposed) == 0 ? FindConnection(message.To) : null;
        if (peer is null)
        {
            // Reported from another thread, never inline: the caller is the raft loop and may not expect re-entry.
            _ = Task.Run(() => Complete(done, false, message));
            return;
        }
        switch (_snapshotSlots.Request(message, snapshot, done, out var delay))
        {
            case SnapshotSlotDecision.Start:
                StartSnapshot(message, snapshot);
                break;
            case SnapshotSlotDecision.Joined:
                _logger.LogDebug("Raft transport {LocalId}: a snapshot transfer to {PeerId} is already under way; not starting another", LocalId, message.To);
                break;
            case SnapshotSlotDecision.Delayed:
                _logger.LogInformation("Raft transport {LocalId}: the last snapshot transfer to {PeerId} failed; retrying in {Delay:0.0} s", LocalId, message.To, delay.TotalSeconds);
                Track(StartAfterBackoffAsync(message.To, delay));
                break;
        }
    }

    /// <summary>Snapshot transfers started so far (tests).</summary>
    internal int SnapshotTransfersStarted => _snapshotSlots.Started;

    /// <summary>How long a new snapshot transfer to <paramref name="peerId"/> would wait now (tests).</summary>
    internal TimeSpan SnapshotRetryDelay(string peerId) => _snapshotSlots.RetryDelay(peerId);

    private void StartSnapshot(Message message, SnapshotInfo snapshot)
    {
        var peer = Volatile.Read(ref _disposed) == 0 ? FindConnection(message.To) : null;
        if (peer is null)
        {
            _ = Task.Run(() => FinishSnapshot(message, false));
            return;
        }
        Track(Task.Run(() => SendSnapshotAsync(message, snapshot, peer.EndPoint, peer.Address), CancellationToken.None));
    }

    private async Task StartAfterBackoffAsync(string peerId, TimeSpan delay)
    {
        try
        {
            await Task.Delay(delay, _shutdown.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            FinishSnapshot(new Message { Type = MessageType.InstallSnapshot, From = LocalId, To = peerId }, false);
            return;
        }
        var (message, snapshot) = _snapshotSlots.StartWaiting(peerId);
        StartSnapshot(message, snapshot);
    }

    private void FinishSnapshot(Message message, bool ok)
    {
        foreach (var done in _snapshotSlots.Finish(message.To, ok)) Complete(done, ok, message);
    }

    /// <summary>The outbound connection state of a peer, for tests and diagnostics.</summary>
    internal PeerConnection? FindPeer(string id) => _peers.GetValueOrDefault(id) ?? _learnedConnections.GetValueOrDefault(id);

    /// <summary>The connection for <paramref name="id"/>: the configured one, else one to the address it announced when it called us.</summary>
    private PeerConnection? FindConnection(string id)
    {
        if (_peers.TryGetValue(id, out var peer)) return peer;
        if (_learnedConnections.TryGetValue(id, out peer)) return peer;
        lock (_peersLock)
        {
            if (Volatile.Read(ref _disposed) != 0) return null;
            if (_peers.TryGetValue(id, out peer) || _learnedConnections.TryGetValue(id, out peer)) return peer;
            if (!_learned.TryGetValue(id, out var address)) return null;
            EndPoint endPoint;
            try
            {
                endPoint = TransportSockets.ParsePeerEndPoint(address);
            }
            catch (FormatException)
            {
                return null; // checked when learned; kept for safety
            }
            _logger.LogInformation("Raft transport {LocalId}: answering {PeerId}, not in the configuration, at the address it announced: {Address}", LocalId, id, address);
            peer = new PeerConnection(LocalId, _identity, id, address, endPoint, _options, _logger, _shutdown.Token);
            _learnedConnections[id] = peer;
            return peer;
        }
    }

    /// <summary>Records the raft address a caller announced; a changed address closes the answering connection opened for the old one.</summary>
    private void Learn(string peerId, string announced, EndPoint? remote)
    {
        if (peerId.Length == 0 || peerId == LocalId) return;
        if (!NetworkAddress.TryParse(announced, out var host, out var port) || port == 0) return;
        if (NetworkAddress.IsWildcard(host))
        {
            // The caller listens on every interface and did not say which one to use: the one it called from is reachable.
            if (remote is not IPEndPoint r) return;
            var from = r.Address.IsIPv4MappedToIPv6 ? r.Address.MapToIPv4() : r.Address;
            announced = TransportSockets.Format(new IPEndPoint(from, port));
        }
        lock (_peersLock)
        {
            if (Volatile.Read(ref _disposed) != 0) return;
            if (_learned.TryGetValue(peerId, out var known) && known == announced) return;
            // Bounded: only ids that completed a handshake get here, but a misbehaving caller should not grow this forever.
            if (!_learned.ContainsKey(peerId) && _learned.Count >= MaxLearnedPeers) return;
            _learned[peerId] = announced;
            if (_learnedConnections.TryGetValue(peerId, out var stale) && stale.Address != announced && _learnedConnections.TryRemove(peerId, out stale))
            {
                Retire(stale);
            }
        }
    }

    private const int MaxLearnedPeers = 1024;

    /// <summary>Closes an outbound connection without waiting; disposal waits for it.</summary>
    private void Retire(PeerConnection connection)
    {
        connection.Stop();
        Track(connection.Completion);
    }

    /// <summary>
    /// Stops listening, closes every connection, cancels snapshot transfers and waits (at most
    /// <see cref="TransportOptions.ShutdownTimeout"/>) for the transport's tasks to end. Never throws.
    /// </summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0) return;
        try
        {
            await _shutdown.CancelAsync().ConfigureAwait(false);
        }
        catch (Exception e)
        {
            _logger.LogDebug("Raft transport {LocalId}: cancellation callback failed during shutdown: {Error}", LocalId, e.Message);
        }
        TransportSockets.Close(_listener);
        lock (_peersLock)
        {
            foreach (var peer in _peers.Values) Retire(peer);
            foreach (var peer in _learnedConnections.Values) Retire(peer);
            _peers = new Dictionary<string, PeerConnection>(StringComparer.Ordinal);
            _learnedConnections.Clear();
        }
        // Cancellation already ends every read; closing the sockets also covers a snapshot handler that ignores its token.
        foreach (var socket in _inbound.Keys) TransportSockets.Close(socket);

        var pending = _background.Keys.ToArray();
        try
        {
            // _shutdown is deliberately never disposed: a late SendSnapshot or SetPeers racing with this method may still
            // read its token, and a source without a timer holds nothing that needs releasing.
            await Task.WhenAll(pending).WaitAsync(_options.ShutdownTimeout).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
            // Only a snapshot handler that ignores cancellation can get here; its socket is closed, so it will fail soon.
            _logger.LogWarning("Raft transport {LocalId}: {Count} tasks still running {Timeout} after shutdown began; abandoning them", LocalId, pending.Count(t => !t.IsCompleted), _options.ShutdownTimeout);
        }
        catch (Exception e)
        {
            _logger.LogDebug("Raft transport {LocalId}: background task failed during shutdown: {Error}", LocalId, e.Message);
        }
    }

    private void Track(Task task)
    {
        if (task.IsCompleted)
        {
            _ = task.Exception; // observed: background tasks catch their own errors, this is a last guard
            return;
        }
        _background.TryAdd(task, 0);
        task.ContinueWith(
            static (t, state) =>
            {
                _ = t.Exception;
                ((ConcurrentDictionary<Task, byte>)state!).TryRemove(t, out _);
            },
            _background,
            CancellationToken.None,
            TaskContinuationOptions.ExecuteSynchronously,
            TaskScheduler.Default);
    }

    private async Task AcceptLoopAsync()
    {
        var ct = _shutdown.Token;
        while (!ct.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptAsync(ct).ConfigureAwait(false);
            }
            catch (Exception) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (ObjectDisposedException)
            {
                return;
            }
            catch (SocketException e)
            {
                // Transient (a connection reset while queued, descriptors exhausted): pause briefly rather than spin.
                _logger.LogWarning("Raft transport {LocalId}: accept failed: {Error}", LocalId, e.Message);
                try
                {
                    await Task.Delay(50, ct).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
                continue;
            }
            Track(Task.Run(() => HandleInboundAsync(socket, ct), CancellationToken.None));
        }
    }

    private async Task HandleInboundAsync(Socket socket, CancellationToken ct)
    {
        _inbound.TryAdd(socket, 0);
        var remote = SafeRemote(socket);
        string? peerId = null;
        try
        {
            if (ct.IsCancellationRequested) return;
            TransportSockets.Configure(socket, _options);
            ConnectionKind kind;
            ulong incarnation;
            using (var handshake = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                handshake.CancelAfter(_options.HandshakeTimeout);
                try
                {
                    var accepted = await AcceptHandshakeAsync(socket, remote, handshake.Token).ConfigureAwait(false);
                    if (accepted is null) return;
                    (kind, peerId, incarnation) = accepted.Value;
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    _logger.LogWarning("Raft transport {LocalId}: {Remote} sent no handshake within {Timeout}; closed", LocalId, remote, _options.HandshakeTimeout);
                    return;
                }
            }

            using var stream = new NetworkStream(socket, ownsSocket: false);
            using var frames = new FrameReader(stream, _options.MaxFrameSize);
            if (kind == ConnectionKind.Messages) await ReceiveMessagesAsync(frames, peerId, incarnation, ct).ConfigureAwait(false);
            else if (kind == ConnectionKind.Call) await AnswerCallAsync(socket, frames, peerId, ct).ConfigureAwait(false);
            else await ReceiveSnapshotAsync(socket, frames, peerId, ct).ConfigureAwait(false);
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
            // Shutting down: whatever the socket threw is the consequence.
        }
        catch (Exception e) when (e is IOException or SocketException or InvalidDataException or FormatException or TimeoutException or ObjectDisposedException)
        {
            _logger.LogWarning("Raft transport {LocalId}: connection from {PeerId} ({Remote}) closed: {Error}", LocalId, peerId ?? "unknown", remote, e.Message);
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Raft transport {LocalId}: connection from {PeerId} ({Remote}) failed", LocalId, peerId ?? "unknown", remote);
        }
        finally
        {
            _inbound.TryRemove(socket, out _);
            TransportSockets.Close(socket);
        }
    }

    /// <summary>Reads and answers the hello; null when the caller was refused (already logged and answered).</summary>
    private async Task<(ConnectionKind Kind, string PeerId, ulong Incarnation)?> AcceptHandshakeAsync(Socket socket, string remote, CancellationToken ct)
    {
        var head = new byte[Handshake.HelloFixedLength];
        await socket.ReceiveExactlyAsync(head, ct).ConfigureAwait(false);
        if (!head.AsSpan(0, 4).SequenceEqual(Handshake.Magic))
        {
            if (Handshake.LooksLikeHttp(head))
            {
                _logger.LogWarning("Raft transport {LocalId}: HTTP request from {Remote} on the raft port; answered 400 and closed", LocalId, remote);
                await TrySendAsync(socket, Handshake.HttpRejection, ct).ConfigureAwait(false);
            }
            else
            {
                _logger.LogWarning("Raft transport {LocalId}: {Remote} is not a RaftKv peer (bad handshake magic); closed", LocalId, remote);
            }
            return null;
        }
        var version = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(4));
        if (version != Handshake.Version)
        {
            _logger.LogWarning("Raft transport {LocalId}: {Remote} speaks transport version {Version}, this node {Ours}; closed. Run the same RaftKv version on every node",
                LocalId, remote, version, Handshake.Version);
            await TrySendAsync(socket, Handshake.EncodeReply(Handshake.UnsupportedVersion), ct).ConfigureAwait(false);
            return null;
        }
        var kind = (ConnectionKind)head[6];
        if (kind is not (ConnectionKind.Messages or ConnectionKind.Snapshot or ConnectionKind.Call))
        {
            _logger.LogWarning("Raft transport {LocalId}: {Remote} asked for unknown connection kind {Kind}; closed", LocalId, remote, head[6]);
            await TrySendAsync(socket, Handshake.EncodeReply(Handshake.UnsupportedKind), ct).ConfigureAwait(false);
            return null;
        }
        var idLength = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(8));
        var addressLength = BinaryPrimitives.ReadUInt16LittleEndian(head.AsSpan(10));
        if (idLength is 0 or > Handshake.MaxIdBytes || addressLength > Handshake.MaxAddressBytes)
        {
            _logger.LogWarning("Raft transport {LocalId}: {Remote} sent a malformed handshake; closed", LocalId, remote);
            return null;
        }
        var rest = new byte[idLength + addressLength + 2];
        await socket.ReceiveExactlyAsync(rest, ct).ConfigureAwait(false);
        var clusterLength = BinaryPrimitives.ReadUInt16LittleEndian(rest.AsSpan(idLength + addressLength));
        if (clusterLength > Handshake.MaxClusterIdBytes)
        {
            _logger.LogWarning("Raft transport {LocalId}: {Remote} sent a malformed handshake; closed", LocalId, remote);
            return null;
        }
        var tail = new byte[clusterLength + 8];
        await socket.ReceiveExactlyAsync(tail, ct).ConfigureAwait(false);
        string peerId, announced, clusterId;
        try
        {
            peerId = StrictUtf8.GetString(rest, 0, idLength);
            announced = StrictUtf8.GetString(rest, idLength, addressLength);
            clusterId = StrictUtf8.GetString(tail, 0, clusterLength);
        }
        catch (ArgumentException)
        {
            _logger.LogWarning("Raft transport {LocalId}: {Remote} sent a handshake that is not UTF-8; closed", LocalId, remote);
            return null;
        }
        var incarnation = BinaryPrimitives.ReadUInt64LittleEndian(tail.AsSpan(clusterLength));
        if (!_identity.Admits(clusterId))
        {
            LogOtherCluster(peerId, announced, clusterId);
            await TrySendAsync(socket, Handshake.EncodeReply(Handshake.WrongCluster, _identity.ClusterId), ct).ConfigureAwait(false);
            return null;
        }
        await socket.SendAllAsync(Handshake.EncodeReply(Handshake.Accepted, _identity.ClusterId), ct).ConfigureAwait(false);
        _logger.LogDebug("Raft transport {LocalId}: accepted {Kind} connection from {PeerId} at {Address} ({Remote})", LocalId, kind, peerId, announced, remote);
        Learn(peerId, announced, SafeRemoteEndPoint(socket));
        return (kind, peerId, incarnation);
    }

    /// <summary>Says, at most once a minute per caller, that a node of another cluster was refused, and what to do.</summary>
    private void LogOtherCluster(string peerId, string announced, string clusterId)
    {
        var now = Environment.TickCount64;
        var last = _refusalLogged.GetValueOrDefault(peerId, long.MinValue);
        if (last != long.MinValue && now - last < 60_000) return;
        _refusalLogged[peerId] = now;
        _logger.LogWarning(
            "Raft transport {LocalId}: refused {PeerId} at {Address}: it belongs to cluster {Theirs}, this node to cluster {Ours}; the two never exchange messages. " +
            Handshake.WrongClusterAdvice,
            LocalId, peerId, announced, clusterId, _identity.ClusterId);
    }

    private static async Task TrySendAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        try
        {
            await socket.SendAllAsync(data, ct).ConfigureAwait(false);
            socket.Shutdown(SocketShutdown.Send);
            // Lingering close: read what the client still sends until it closes (bounded by the handshake timeout), because
            // closing with unread bytes makes the kernel send a reset that can destroy the answer before it is read.
            var sink = new byte[1024];
            var budget = 64 << 10;
            while (budget > 0)
            {
                var n = await socket.ReceiveAsync(sink, SocketFlags.None, ct).ConfigureAwait(false);
                if (n == 0) break;
                budget -= n;
            }
        }
        catch (Exception)
        {
            // A courtesy answer to a client we are refusing anyway.
        }
    }

    private async Task ReceiveMessagesAsync(FrameReader frames, string peerId, ulong incarnation, CancellationToken ct)
    {
        var strings = new Utf8StringCache();
        var onMessage = _onMessage!;
        // No read timeout: a peer may legitimately have nothing to say for a long time. Keep-alive catches dead peers,
        // and shutdown cancels the read.
        while (await frames.ReadFrameAsync(ct).ConfigureAwait(false))
        {
            var message = MessageCodec.Decode(frames.Current.Span, strings, incarnation);
            if (message.To != LocalId)
            {
                // A stale address mapping pointed a peer at the wrong node; delivering would confuse the core.
                _logger.LogWarning("Raft transport {LocalId}: dropping {Message} from {PeerId}: addressed to another node", LocalId, message, peerId);
                continue;
            }
            // A snapshot is announced on its own connection once its data is stored; one announced here has no data, and
            // installing it would find nothing in the snapshot store.
            var problem = message.Type == MessageType.InstallSnapshot
                ? "InstallSnapshot on a message connection (snapshots come on snapshot connections)"
                : MessageValidator.FindProblem(message);
            if (problem is not null)
            {
                ReportMalformed(message, peerId, problem);
                continue;
            }
            try
            {
                onMessage(message);
            }
            catch (Exception e)
            {
                _logger.LogError(e, "Raft transport {LocalId}: message handler failed on {Message}", LocalId, message);
            }
        }
        _logger.LogDebug("Raft transport {LocalId}: {PeerId} closed its connection", LocalId, peerId);
    }

    /// <summary>Logs a dropped message, at most once per <see cref="MalformedLogInterval"/> (with how many were dropped meanwhile).</summary>
    private void ReportMalformed(Message message, string peerId, string problem)
    {
        Interlocked.Increment(ref _malformedDropped);
        if (!_malformedLog.TryEnter(out var held)) return;
        _logger.LogWarning(
            "Raft transport {LocalId}: dropped a malformed message from {PeerId}: {Problem} ({Message}); {Held} more dropped since the last such line. The sender may run a different version or be faulty",
            LocalId, peerId, problem, message, held);
    }

    /// <summary>How often a malformed message is logged at most.</summary>
    internal static readonly TimeSpan MalformedLogInterval = TimeSpan.FromSeconds(10);

    private readonly LogThrottle _malformedLog = new(MalformedLogInterval);
    private long _malformedDropped;

    /// <summary>Messages dropped because they were malformed, since the transport started.</summary>
    public long MalformedMessagesDropped => Interlocked.Read(ref _malformedDropped);

    private async Task ReceiveSnapshotAsync(Socket socket, FrameReader frames, string peerId, CancellationToken ct)
    {
        bool got;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            timeout.CancelAfter(_options.SnapshotReadTimeout);
            try
            {
                got = await frames.ReadFrameAsync(timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new TimeoutException("no snapshot header in time");
            }
        }
        if (!got) throw new EndOfStreamException("connection closed before the snapshot header");
        var header = frames.Current.Span;
        if (header.Length < 8) throw new InvalidDataException("snapshot header too short");
        var length = BinaryPrimitives.ReadInt64LittleEndian(header);
        if (length < 0) throw new InvalidDataException($"bad snapshot length {length}");
        var message = MessageCodec.Decode(header[8..]);
        if (message.Type != MessageType.InstallSnapshot || message.Snapshot is null) throw new InvalidDataException($"snapshot connection opened with {message}");
        if (message.To != LocalId) throw new InvalidDataException($"snapshot addressed to {message.To}, not this node");
        if (MessageValidator.FindProblem(message) is { } problem) throw new InvalidDataException($"malformed snapshot header {message}: {problem}");

        _logger.LogInformation("Raft transport {LocalId}: receiving snapshot {Index}@{Term} ({Length} bytes) from {PeerId}", LocalId, message.Snapshot.Index, message.Snapshot.Term, length, peerId);
        var data = new SnapshotReceiveStream(frames, length, _options.SnapshotReadTimeout, ct);
        var stored = false;
        try
        {
            await _onSnapshot!(message, data, ct).ConfigureAwait(false);
            stored = data.Completed;
            if (!stored) _logger.LogWarning("Raft transport {LocalId}: snapshot handler returned before reading the whole snapshot from {PeerId}; reporting failure", LocalId, peerId);
        }
        catch (Exception e) when (!ct.IsCancellationRequested)
        {
            _logger.LogWarning("Raft transport {LocalId}: snapshot {Index} from {PeerId} not stored: {Error}", LocalId, message.Snapshot.Index, peerId, e.Message);
        }
        if (ct.IsCancellationRequested) return;

        using var ackTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        ackTimeout.CancelAfter(_options.WriteTimeout);
        var ack = new[] { stored ? SnapshotFrames.AckStored : SnapshotFrames.AckFailed };
        try
        {
            await socket.SendAllAsync(ack, ackTimeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // The sender is likely gone already (that may be why the transfer failed); it reports its own failure.
            _logger.LogDebug("Raft transport {LocalId}: could not acknowledge snapshot to {PeerId}: {Error}", LocalId, peerId, e.Message);
        }
    }

    private async Task SendSnapshotAsync(Message message, SnapshotInfo snapshot, EndPoint endPoint, string address)
    {
        var ct = _shutdown.Token;
        var ok = false;
        Socket? socket = null;
        byte[]? buffer = null;
        try
        {
            if (message.Snapshot is null)
            {
                // The receiver needs the metadata to store the file; take it from the snapshot being sent.
                message = WithSnapshot(message, snapshot.Metadata);
            }
            socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            TransportSockets.Configure(socket, _options);
            using (var connect = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                connect.CancelAfter(_options.ConnectTimeout);
                try
                {
                    await socket.ConnectAsync(endPoint, connect.Token).ConfigureAwait(false);
                    await Handshake.ExchangeAsync(socket, _identity.Hello(ConnectionKind.Snapshot), $"{message.To} at {address}", connect.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    throw new TimeoutException($"no connection and handshake within {_options.ConnectTimeout}");
                }
            }

            _logger.LogInformation("Raft transport {LocalId}: sending {Snapshot} to {PeerId}", LocalId, snapshot, message.To);
            using var writeTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var headerLength = 8 + MessageCodec.GetEncodedLength(message);
            if (headerLength > _options.MaxFrameSize) throw new InvalidOperationException("snapshot header exceeds the frame limit");
            buffer = ArrayPool<byte>.Shared.Rent(Math.Max(4 + headerLength, 4 + 1 + _options.SnapshotChunkSize));
            BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)headerLength);
            BinaryPrimitives.WriteInt64LittleEndian(buffer.AsSpan(4), snapshot.DataLength);
            MessageCodec.Encode(message, buffer.AsSpan(12));
            await WriteAsync(socket, buffer.AsMemory(0, 4 + headerLength), writeTimeout, ct).ConfigureAwait(false);

            long total = 0;
            uint crc = 0;
            await using (var data = SnapshotStore.OpenRead(snapshot))
            {
                while (true)
                {
                    // Fill whole chunks: the file stream may return less than asked, and small frames would waste syscalls.
                    var filled = 0;
                    while (filled < _options.SnapshotChunkSize)
                    {
                        var n = await data.ReadAsync(buffer.AsMemory(5 + filled, _options.SnapshotChunkSize - filled), ct).ConfigureAwait(false);
                        if (n == 0) break;
                        filled += n;
                    }
                    if (filled == 0) break;
                    crc = Crc32C.Append(crc, buffer.AsSpan(5, filled));
                    total += filled;
                    BinaryPrimitives.WriteUInt32LittleEndian(buffer, (uint)(1 + filled));
                    buffer[4] = SnapshotFrames.Data;
                    await WriteAsync(socket, buffer.AsMemory(0, 5 + filled), writeTimeout, ct).ConfigureAwait(false);
                }
            }

            var end = new byte[4 + SnapshotFrames.EndLength];
            BinaryPrimitives.WriteUInt32LittleEndian(end, SnapshotFrames.EndLength);
            end[4] = SnapshotFrames.End;
            BinaryPrimitives.WriteInt64LittleEndian(end.AsSpan(5), total);
            BinaryPrimitives.WriteUInt32LittleEndian(end.AsSpan(13), crc);
            await WriteAsync(socket, end, writeTimeout, ct).ConfigureAwait(false);

            // The receiver acknowledges once its handler has stored the data, which may include an fsync of many MB.
            var ack = new byte[1];
            using (var ackTimeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
            {
                ackTimeout.CancelAfter(_options.SnapshotAckTimeout);
                try
                {
                    await socket.ReceiveExactlyAsync(ack, ackTimeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested)
                {
                    throw new TimeoutException($"no acknowledgement within {_options.SnapshotAckTimeout}");
                }
            }
            ok = ack[0] == SnapshotFrames.AckStored;
            if (ok) _logger.LogInformation("Raft transport {LocalId}: {PeerId} stored snapshot {Index} ({Length} bytes)", LocalId, message.To, snapshot.Metadata.Index, total);
            else _logger.LogWarning("Raft transport {LocalId}: {PeerId} failed to store snapshot {Index}", LocalId, message.To, snapshot.Metadata.Index);
        }
        catch (Exception) when (ct.IsCancellationRequested)
        {
            // Shutting down.
        }
        catch (Exception e)
        {
            _logger.LogWarning("Raft transport {LocalId}: sending snapshot {Index} to {PeerId} failed: {Error}", LocalId, snapshot.Metadata.Index, message.To, e.Message);
        }
        finally
        {
            // Closing without the end frame is what tells the receiver the transfer broke.
            TransportSockets.Close(socket);
            if (buffer is not null) ArrayPool<byte>.Shared.Return(buffer);
            FinishSnapshot(message, ok);
        }
    }

    private async Task WriteAsync(Socket socket, ReadOnlyMemory<byte> data, CancellationTokenSource writeTimeout, CancellationToken ct)
    {
        writeTimeout.CancelAfter(_options.WriteTimeout);
        try
        {
            await socket.SendAllAsync(data, writeTimeout.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested)
        {
            throw new TimeoutException($"a write did not complete within {_options.WriteTimeout}; the receiver is not reading");
        }
        writeTimeout.CancelAfter(Timeout.Infinite);
    }

    private void Complete(Action<bool> done, bool ok, Message message)
    {
        try
        {
            done(ok);
        }
        catch (Exception e)
        {
            _logger.LogError(e, "Raft transport {LocalId}: snapshot completion callback failed for {Message}", LocalId, message);
        }
    }

    private static Message WithSnapshot(Message m, SnapshotMetadata snapshot) => new()
    {
        Type = m.Type,
        From = m.From,
        To = m.To,
        Term = m.Term,
        LogTerm = m.LogTerm,
        Index = m.Index,
        Entries = m.Entries,
        Commit = m.Commit,
        Reject = m.Reject,
        RejectHint = m.RejectHint,
        Snapshot = snapshot,
        Context = m.Context,
        Transfer = m.Transfer,
    };

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static EndPoint? SafeRemoteEndPoint(Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint;
        }
        catch (Exception)
        {
            return null;
        }
    }

    private static string SafeRemote(Socket socket)
    {
        try
        {
            return socket.RemoteEndPoint?.ToString() ?? "?";
        }
        catch (Exception)
        {
            return "?";
        }
    }
}
