using System.Buffers.Binary;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;

namespace RaftKv.Node.Transport;

// Request/answer calls on a connection of their own: one request frame, one answer frame, then close. They are rare
// (an embedded node forwarding a client call to its leader), so a fresh connection per call keeps them simple and
// never queues them behind raft traffic.
public sealed partial class TcpTransport
{
    /// <inheritdoc />
    public void SetCallHandler(Func<ReadOnlyMemory<byte>, CancellationToken, Task<byte[]>> handler) => _onCall = handler;

    /// <inheritdoc />
    public async Task<byte[]> CallAsync(string peerId, ReadOnlyMemory<byte> request, TimeSpan timeout, CancellationToken cancellationToken)
    {
        if (Volatile.Read(ref _disposed) != 0) throw new IOException("the transport is closed");
        if (request.Length + 4 > _options.MaxFrameSize) throw new IOException("request exceeds the frame limit");
        var peer = FindConnection(peerId) ?? throw new IOException($"no address known for {peerId}");
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, _shutdown.Token);
        deadline.CancelAfter(timeout);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        try
        {
            TransportSockets.Configure(socket, _options);
            await socket.ConnectAsync(peer.EndPoint, deadline.Token).ConfigureAwait(false);
            await Handshake.ExchangeAsync(socket, _identity.Hello(ConnectionKind.Call), $"{peerId} at {peer.Address}", deadline.Token).ConfigureAwait(false);
            var frame = new byte[4 + request.Length];
            BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)request.Length);
            request.CopyTo(frame.AsMemory(4));
            await socket.SendAllAsync(frame, deadline.Token).ConfigureAwait(false);
            await using var stream = new NetworkStream(socket, ownsSocket: false);
            using var frames = new FrameReader(stream, _options.MaxFrameSize);
            if (!await frames.ReadFrameAsync(deadline.Token).ConfigureAwait(false)) throw new IOException($"{peerId} closed the call without answering");
            return frames.Current.ToArray();
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            throw new IOException($"no answer from {peerId} within {timeout}");
        }
        catch (Exception e) when (e is SocketException or InvalidDataException)
        {
            throw new IOException($"call to {peerId} failed: {e.Message}", e);
        }
        finally
        {
            TransportSockets.Close(socket);
        }
    }

    private async Task AnswerCallAsync(Socket socket, FrameReader frames, string peerId, CancellationToken ct)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(_options.SnapshotReadTimeout);
        if (!await frames.ReadFrameAsync(timeout.Token).ConfigureAwait(false)) return;
        var handler = _onCall;
        if (handler is null)
        {
            _logger.LogWarning("Raft transport {LocalId}: call from {PeerId} refused: this node takes no calls", LocalId, peerId);
            return;
        }
        var answer = await handler(frames.Current, timeout.Token).ConfigureAwait(false);
        var frame = new byte[4 + answer.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)answer.Length);
        answer.CopyTo(frame.AsSpan(4));
        await socket.SendAllAsync(frame, timeout.Token).ConfigureAwait(false);
    }
}
