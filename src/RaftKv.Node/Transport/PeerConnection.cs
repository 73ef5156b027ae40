using System.Buffers;
using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using RaftKv.Raft;

namespace RaftKv.Node.Transport;

/// <summary>
/// The outbound side of one peer: a bounded queue the raft loop writes to without ever waiting, and one writer task that
/// owns the TCP connection, connects lazily, batches queued frames into few socket writes, and reconnects with
/// exponential backoff.
/// </summary>
/// <remarks>
/// While the connection is up and the writer has nothing queued, a message is sent straight from the caller's thread
/// (the raft loop) with one non-blocking write: waking the writer task would cost a thread switch per message, which on
/// a small or virtualized machine costs more than the write. When the kernel takes only part of the frame (its buffer
/// is full), the rest is handed to the writer, and everything after it queues behind it until the writer has caught up:
/// frames never overtake each other, and the caller never waits.
/// </remarks>
internal sealed class PeerConnection
{
    private readonly string _localId;
    private readonly LocalIdentity _identity;
    private long _lastRefusalLog = long.MinValue;
    private readonly TransportOptions _options;
    private readonly ILogger _logger;
    private readonly Channel<Message> _queue;
    private readonly CancellationTokenSource _stop;
    private long _dropped;
    private volatile bool _connected;

    // Direct sends (see remarks). All under _sendLock: the decision to send directly or to queue, the writer's taking
    // of queued messages, and the hand-over of an unsent remainder must be ordered against each other.
    private readonly Lock _sendLock = new();
    private readonly ArrayBufferWriter<byte> _direct = new(4 << 10);
    private Socket? _directSocket;   // the connection, while direct sends are allowed on it
    private bool _writerActive;      // the writer holds messages it has not finished sending
    private byte[]? _remainder;      // bytes of a direct send the kernel did not take, for the writer to send first

    // Queued in place of the remainder, so the writer wakes and sends it before whatever is queued after it.
    private static readonly Message RemainderMarker = new();

    // Larger messages always go through the writer: encoding them, and copying a remainder, would hold up the raft
    // loop (and the lock), and the direct buffer would stay that big.
    private const int DirectSendMaxBytes = 64 << 10;

    // The writer's messages, taken from the queue under the lock and encoded outside it.
    private readonly List<Message> _taken = [];

    /// <summary>Messages written directly, and how many of them the kernel took only in part (tests).</summary>
    internal long DirectSends;
    internal long RemaindersHandedOver;

    public PeerConnection(string localId, LocalIdentity identity, string peerId, string address, EndPoint endPoint, TransportOptions options, ILogger logger, CancellationToken shutdown)
    {
        _localId = localId;
        _identity = identity;
        PeerId = peerId;
        Address = address;
        EndPoint = endPoint;
        _options = options;
        _logger = logger;
        // FullMode.Wait with TryWrite: a full queue makes TryWrite return false at once. (DropWrite would also never
        // block, but it reports a dropped item as written, and the raft loop wants to know.)
        _queue = Channel.CreateBounded<Message>(new BoundedChannelOptions(options.SendQueueCapacity)
        {
            FullMode = BoundedChannelFullMode.Wait,
            SingleReader = true,
            SingleWriter = false,
            AllowSynchronousContinuations = false,
        });
        _stop = CancellationTokenSource.CreateLinkedTokenSource(shutdown);
        Completion = Task.Run(RunAsync, CancellationToken.None);
    }

    public string PeerId { get; }

    /// <summary>The peer's raft address as configured.</summary>
    public string Address { get; }

    public EndPoint EndPoint { get; }

    /// <summary>Ends when the writer has stopped; never faults.</summary>
    public Task Completion { get; }

    /// <summary>True while a handshaken connection is open (for tests and status).</summary>
    public bool IsConnected => _connected;

    /// <summary>Messages dropped because the queue was full or the connection failed with them queued.</summary>
    public long Dropped => Interlocked.Read(ref _dropped);

    public bool TryEnqueue(Message message)
    {
        lock (_sendLock)
        {
            if (_directSocket is { } socket && !_writerActive && _queue.Reader.Count == 0 && IsSmall(message) && TrySendDirect(socket, message)) return true;
            if (_queue.Writer.TryWrite(message)) return true;
        }
        Interlocked.Increment(ref _dropped);
        return false;
    }

    private static bool IsSmall(Message message) => ApproximateBytes(message) <= DirectSendMaxBytes;

    /// <summary>A message's encoded size, near enough to bound a direct send or a batch without encoding it.</summary>
    private static long ApproximateBytes(Message message)
    {
        long bytes = 64; // the frame and the message's own fields
        foreach (var e in message.Entries.Span) bytes += e.Data.Length + 32;
        return bytes;
    }

    /// <summary>
    /// Writes <paramref name="message"/> to the socket without waiting. True when it went out or its remainder was
    /// handed to the writer; false when it could not be sent at all (then the caller queues it: the writer will find
    /// the connection's fate).
    /// </summary>
    private bool TrySendDirect(Socket socket, Message message)
    {
        _direct.ResetWrittenCount();
        try
        {
            MessageCodec.WriteFrame(message, _direct, _options.MaxFrameSize);
        }
        catch (Exception e) when (e is InvalidOperationException or ArgumentException)
        {
            return false; // the writer fails it the same way, and logs it
        }
        var frame = _direct.WrittenSpan;
        int sent;
        SocketError error;
        try
        {
            sent = socket.Send(frame, SocketFlags.None, out error);
        }
        catch (ObjectDisposedException)
        {
            _directSocket = null;
            return false;
        }
        if (error == SocketError.Success && sent == frame.Length)
        {
            DirectSends++;
            return true;
        }
        if (error is SocketError.Success or SocketError.WouldBlock)
        {
            DirectSends++;
            RemaindersHandedOver++;
            // The kernel's buffer is full: the writer sends the rest (and waits for room, with its write timeout).
            _remainder = frame[Math.Max(sent, 0)..].ToArray();
            _writerActive = true;
            if (_queue.Writer.TryWrite(RemainderMarker)) return true;
            // Stop completed the queue after this write began: the connection is going away with a partial frame,
            // which the peer discards; the message is lost like any queued at a close.
            _remainder = null;
            _directSocket = null;
            Interlocked.Increment(ref _dropped);
            return true;
        }
        // A broken connection: stop sending directly; the message goes to the queue, and the writer's own send or its
        // close watch ends the connection and reconnects.
        _directSocket = null;
        return false;
    }

    /// <summary>Stops the writer and closes the connection; returns at once (await <see cref="Completion"/> to wait).</summary>
    public void Stop()
    {
        lock (_sendLock)
        {
            // No direct write to a peer being removed.
            _directSocket = null;
        }
        _queue.Writer.TryComplete();
        try
        {
            _stop.Cancel();
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private async Task RunAsync()
    {
        var ct = _stop.Token;
        var backoff = _options.ReconnectMinDelay;
        var failures = 0;
        try
        {
            while (!ct.IsCancellationRequested)
            {
                // Connect only when there is something to send: an idle or absent peer costs no connection attempts.
                if (!await _queue.Reader.WaitToReadAsync(ct).ConfigureAwait(false)) return;

                Socket? socket = null;
                try
                {
                    socket = await ConnectAsync(ct).ConfigureAwait(false);
                    if (failures > 0) _logger.LogInformation("Raft transport {LocalId}: connected to {PeerId} at {Address} after {Failures} failed attempts", _localId, PeerId, Address, failures);
                    else _logger.LogDebug("Raft transport {LocalId}: connected to {PeerId} at {Address}", _localId, PeerId, Address);
                    failures = 0;
                    backoff = _options.ReconnectMinDelay;
                    _identity.RefusedBy.TryRemove(PeerId, out _);
                    _connected = true;
                    await PumpAsync(socket, ct).ConfigureAwait(false);
                    return; // the queue was completed: the peer was removed
                }
                catch (Exception) when (ct.IsCancellationRequested)
                {
                    // Stopped (peer removed or transport disposed): whatever the closing socket threw is the consequence.
                    return;
                }
                catch (PeerRefusedException e) when (e.OtherClusterId is not null)
                {
                    failures++;
                    _identity.RefusedBy[PeerId] = (e.OtherClusterId, Environment.TickCount64);
                    // Not a network fault that passes: say it again now and then, for as long as it lasts.
                    var now = Environment.TickCount64;
                    if (_lastRefusalLog == long.MinValue || now - _lastRefusalLog >= 60_000)
                    {
                        _lastRefusalLog = now;
                        _logger.LogWarning("Raft transport {LocalId}: {Error}", _localId, e.Message);
                    }
                }
                catch (Exception e)
                {
                    failures++;
                    // The first failure of a run is worth a warning; the retries that follow would flood the log.
                    if (failures == 1) _logger.LogWarning("Raft transport {LocalId}: connection to {PeerId} at {Address} failed: {Error}", _localId, PeerId, Address, e.Message);
                    else _logger.LogDebug("Raft transport {LocalId}: connection to {PeerId} at {Address} failed again ({Failures}): {Error}", _localId, PeerId, Address, failures, e.Message);
                }
                finally
                {
                    _connected = false;
                    TransportSockets.Close(socket);
                }

                // What was queued for a dead connection is stale by the time it could go out; Raft resends what matters.
                DropQueued();
                await Task.Delay(backoff, ct).ConfigureAwait(false);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.ReconnectMaxDelay.Ticks));
            }
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception e)
        {
            // Unreachable by design; logged rather than left as an unobserved fault.
            _logger.LogError(e, "Raft transport {LocalId}: writer for {PeerId} stopped unexpectedly", _localId, PeerId);
        }
        finally
        {
            _queue.Writer.TryComplete();
            DropQueued();
            _stop.Dispose();
        }
    }

    private void DropQueued()
    {
        var n = 0;
        // The remainder marker counts too: it stands for a message the caller was told had gone out.
        while (_queue.Reader.TryRead(out _)) n++;
        if (n > 0)
        {
            Interlocked.Add(ref _dropped, n);
            _logger.LogDebug("Raft transport {LocalId}: dropped {Count} messages queued for {PeerId}", _localId, n, PeerId);
        }
    }

    private async Task<Socket> ConnectAsync(CancellationToken ct)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            TransportSockets.Configure(socket, _options);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
            timeout.CancelAfter(_options.ConnectTimeout);
            try
            {
                await socket.ConnectAsync(EndPoint, timeout.Token).ConfigureAwait(false);
                await Handshake.ExchangeAsync(socket, _identity.Hello(ConnectionKind.Messages), $"{PeerId} at {Address}", timeout.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new TimeoutException($"no connection and handshake within {_options.ConnectTimeout.TotalMilliseconds:0} ms");
            }
            return socket;
        }
        catch
        {
            TransportSockets.Close(socket);
            throw;
        }
    }

    private async Task PumpAsync(Socket socket, CancellationToken ct)
    {
        using var connection = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // The peer never writes on this connection, so a read that completes means it closed (or broke) it: notice that
        // now rather than on the next write, which the kernel might still accept into its buffer.
        var watch = WatchForCloseAsync(socket, connection);
        // One timer per connection, armed around each write: a peer that stops reading fails the write instead of
        // stalling this writer (and with it the queue) forever.
        using var writeTimeout = CancellationTokenSource.CreateLinkedTokenSource(connection.Token);
        var batch = new ArrayBufferWriter<byte>(16 << 10);
        // Direct sends must never wait: a non-blocking socket makes a full buffer a short write, not a stall. (The
        // writer's own sends are asynchronous, which this does not change.)
        socket.Blocking = false;
        lock (_sendLock)
        {
            _writerActive = false;
            _remainder = null;
            _directSocket = socket;
        }
        try
        {
            while (true)
            {
                if (!await _queue.Reader.WaitToReadAsync(connection.Token).ConfigureAwait(false)) return;
                batch.ResetWrittenCount();
                byte[]? remainder = null;
                _taken.Clear();
                lock (_sendLock)
                {
                    // Only take the messages here; encoding happens outside the lock, which the raft loop also takes.
                    // While _writerActive is set nothing is written directly, so the order holds.
                    _writerActive = true;
                    var bytes = 0L;
                    while (bytes < _options.MaxBatchBytes && _queue.Reader.TryRead(out var message))
                    {
                        if (ReferenceEquals(message, RemainderMarker))
                        {
                            remainder = _remainder; // always first: it was queued when the queue was empty
                            _remainder = null;
                            bytes += remainder?.Length ?? 0;
                            continue;
                        }
                        _taken.Add(message);
                        bytes += ApproximateBytes(message);
                    }
                }
                if (remainder is not null) batch.Write(remainder);
                foreach (var message in _taken)
                {
                    try
                    {
                        MessageCodec.WriteFrame(message, batch, _options.MaxFrameSize);
                    }
                    catch (Exception e) when (e is InvalidOperationException or ArgumentException)
                    {
                        Interlocked.Increment(ref _dropped);
                        _logger.LogError("Raft transport {LocalId}: cannot send {Message} to {PeerId}: {Error}", _localId, message, PeerId, e.Message);
                    }
                }
                _taken.Clear();
                if (batch.WrittenCount == 0)
                {
                    lock (_sendLock)
                    {
                        if (_queue.Reader.Count == 0) _writerActive = false;
                    }
                    continue;
                }
                writeTimeout.CancelAfter(_options.WriteTimeout);
                try
                {
                    await socket.SendAllAsync(batch.WrittenMemory, writeTimeout.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (!ct.IsCancellationRequested && !connection.IsCancellationRequested)
                {
                    throw new TimeoutException($"a write did not complete within {_options.WriteTimeout.TotalMilliseconds:0} ms; the peer is not reading");
                }
                writeTimeout.CancelAfter(Timeout.Infinite);
                // Caught up: the next message may go out directly again.
                lock (_sendLock)
                {
                    if (_queue.Reader.Count == 0) _writerActive = false;
                }
                // A batch that grew for one huge message should not stay that big for the life of the connection.
                if (batch.Capacity > 4 * _options.MaxBatchBytes) batch = new ArrayBufferWriter<byte>(16 << 10);
            }
        }
        catch (OperationCanceledException) when (!ct.IsCancellationRequested && connection.IsCancellationRequested)
        {
            throw new IOException("the peer closed the connection");
        }
        finally
        {
            // No direct send may touch the socket once it is closing.
            lock (_sendLock)
            {
                _directSocket = null;
                _remainder = null;
            }
            await connection.CancelAsync().ConfigureAwait(false);
            TransportSockets.Close(socket);
            await watch.ConfigureAwait(false);
        }
    }

    private static async Task WatchForCloseAsync(Socket socket, CancellationTokenSource connection)
    {
        var one = new byte[1];
        try
        {
            await socket.ReceiveAsync(one, SocketFlags.None, connection.Token).ConfigureAwait(false);
        }
        catch (Exception)
        {
            // Any outcome (close, reset, cancellation) means the same: the connection is over.
        }
        try
        {
            await connection.CancelAsync().ConfigureAwait(false);
        }
        catch (ObjectDisposedException)
        {
        }
    }
}

/// <summary>Socket helpers that finish the whole buffer, which Socket's own calls do not promise.</summary>
internal static class SocketExtensions
{
    public static async ValueTask SendAllAsync(this Socket socket, ReadOnlyMemory<byte> data, CancellationToken ct)
    {
        while (!data.IsEmpty)
        {
            var n = await socket.SendAsync(data, SocketFlags.None, ct).ConfigureAwait(false);
            if (n <= 0) throw new IOException("connection closed while sending");
            data = data[n..];
        }
    }

    public static async ValueTask ReceiveExactlyAsync(this Socket socket, Memory<byte> buffer, CancellationToken ct)
    {
        while (!buffer.IsEmpty)
        {
            var n = await socket.ReceiveAsync(buffer, SocketFlags.None, ct).ConfigureAwait(false);
            if (n == 0) throw new EndOfStreamException("connection closed by the peer");
            buffer = buffer[n..];
        }
    }
}
