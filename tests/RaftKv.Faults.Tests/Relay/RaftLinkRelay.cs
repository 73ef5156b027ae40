using System.Net;
using System.Net.Sockets;

namespace RaftKv.Faults.Tests.Relay;

/// <summary>
/// Listens where one node's raft address is advertised and forwards each connection to the node's real raft port,
/// byte for byte, unless the <see cref="RelayNetwork"/>'s rule for (caller, this node) says otherwise. The caller is
/// named by the hello its transport sends first (<see cref="HelloPrefix"/>).
/// </summary>
public sealed class RaftLinkRelay : IDisposable
{
    private readonly TcpListener _listener;
    private readonly RelayNetwork _network;
    private readonly CancellationTokenSource _stop = new();
    private long _forwarded;
    private long _dropped;

    public RaftLinkRelay(string target, int targetPort, RelayNetwork network)
    {
        Target = target;
        TargetPort = targetPort;
        _network = network;
        // Bound at once (port 0: the OS picks), so no other program can take the port between pick and bind.
        _listener = new TcpListener(IPAddress.Loopback, 0);
        _listener.Start();
        Port = ((IPEndPoint)_listener.LocalEndpoint).Port;
        _ = AcceptLoopAsync();
    }

    public string Target { get; }
    public int Port { get; }
    public int TargetPort { get; set; }
    public long BytesForwarded => Interlocked.Read(ref _forwarded);
    public long BytesDropped => Interlocked.Read(ref _dropped);

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket client;
            try
            {
                client = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                return;
            }
            _ = HandleAsync(client);
        }
    }

    private async Task HandleAsync(Socket client)
    {
        client.NoDelay = true;
        var connection = new RelayedConnection(client, Target);
        _network.Register(connection);
        try
        {
            using var helloTimeout = CancellationTokenSource.CreateLinkedTokenSource(_stop.Token);
            helloTimeout.CancelAfter(TimeSpan.FromSeconds(10));
            var (hello, caller) = await HelloPrefix.ReadAsync(connection.ClientStream, helloTimeout.Token);
            // Not a raft hello (nothing the nodes send): forwarded under an unknown name, so rules never apply to it.
            connection.From = caller ?? "?";
            switch (_network.Rule(connection.From, Target))
            {
                case LinkRule.Cut:
                    _network.CountCut();
                    return;
                case LinkRule.Drop:
                    // Never connected upstream: the hello itself is lost, like everything after it.
                    connection.LostBytes = true;
                    Interlocked.Add(ref _dropped, hello.Length);
                    await PumpAsync(connection, connection.ClientStream, null);
                    return;
            }
            var upstream = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            connection.Upstream = upstream;
            try
            {
                await upstream.ConnectAsync(IPAddress.Loopback, TargetPort, _stop.Token);
            }
            catch (SocketException)
            {
                return; // the node is down: the caller sees its connection close, as it would without the relay
            }
            connection.UpstreamConnected();
            await connection.UpstreamStream!.WriteAsync(hello, _stop.Token);
            Interlocked.Add(ref _forwarded, hello.Length);
            await Task.WhenAll(
                PumpAsync(connection, connection.ClientStream, connection.UpstreamStream),
                PumpAsync(connection, connection.UpstreamStream!, connection.ClientStream));
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        finally
        {
            connection.Close();
            _network.Unregister(connection);
        }
    }

    /// <summary>Copies one direction while the link passes; discards while it drops; ends when either side closes.</summary>
    private async Task PumpAsync(RelayedConnection connection, Stream from, Stream? to)
    {
        var buffer = new byte[64 * 1024];
        try
        {
            while (true)
            {
                var n = await from.ReadAsync(buffer, _stop.Token);
                if (n == 0) break;
                var rule = _network.Rule(connection.From, Target);
                if (rule == LinkRule.Cut) break;
                if (rule == LinkRule.Drop || to is null)
                {
                    connection.LostBytes = true;
                    Interlocked.Add(ref _dropped, n);
                    continue;
                }
                await to.WriteAsync(buffer.AsMemory(0, n), _stop.Token);
                Interlocked.Add(ref _forwarded, n);
            }
        }
        catch (Exception e) when (e is IOException or SocketException or OperationCanceledException or ObjectDisposedException)
        {
        }
        // One side ended: end both, as a plain TCP path would.
        connection.Close();
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _listener.Dispose();
        _stop.Dispose();
    }
}

/// <summary>One connection through a relay: the caller's socket, the socket to the node, and whether bytes were lost.</summary>
internal sealed class RelayedConnection(Socket client, string to)
{
    private int _closed;
    private Socket? _upstream;

    public string From { get; set; } = "?";
    public string To { get; } = to;
    public volatile bool LostBytes;
    public Stream ClientStream { get; } = new NetworkStream(client, ownsSocket: false);
    public Stream? UpstreamStream { get; private set; }

    public Socket? Upstream
    {
        get => _upstream;
        set
        {
            _upstream = value;
            // Cut while it was being made: close it too.
            if (Volatile.Read(ref _closed) == 1) value?.Close();
        }
    }

    /// <summary>Opens the stream to the node once the socket is connected (a stream needs a connected socket).</summary>
    public void UpstreamConnected() => UpstreamStream = new NetworkStream(_upstream!, ownsSocket: false);

    public void Close()
    {
        if (Interlocked.Exchange(ref _closed, 1) == 1) return;
        foreach (var s in new[] { client, _upstream })
        {
            if (s is null) continue;
            try
            {
                // Linger 0: a reset, like a cable pulled mid-stream rather than a polite close.
                s.LingerState = new LingerOption(true, 0);
                s.Close();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
            }
        }
    }
}
