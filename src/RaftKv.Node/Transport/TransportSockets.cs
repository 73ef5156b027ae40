using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace RaftKv.Node.Transport;

/// <summary>Address parsing and the socket settings every raft connection gets.</summary>
internal static class TransportSockets
{
    /// <summary>The endpoint to connect to for a peer address: an <see cref="IPEndPoint"/> for literals, else a <see cref="DnsEndPoint"/> resolved at each connect.</summary>
    public static EndPoint ParsePeerEndPoint(string address)
    {
        // Trimmed: addresses stored in a configuration by older versions, whose checks let surrounding spaces through.
        if (!NetworkAddress.TryParse(address.Trim(), out var host, out var port) || host.Length == 0 || port == 0)
        {
            throw new FormatException($"peer address '{address}' is not of the form host:port");
        }
        return IPAddress.TryParse(host, out var ip) ? new IPEndPoint(ip, port) : new DnsEndPoint(host, port);
    }

    /// <summary>The local endpoint to bind for a listen address; host names are resolved once, preferring IPv4.</summary>
    public static IPEndPoint ResolveListenEndPoint(string address)
    {
        if (!NetworkAddress.TryParse(address, out var host, out var port))
        {
            throw new FormatException($"listen address '{address}' is not of the form host:port (port 0 picks a free port)");
        }
        if (host is "" or "*" or "+") return new IPEndPoint(IPAddress.Any, port);
        if (IPAddress.TryParse(host, out var ip)) return new IPEndPoint(ip, port);
        if (string.Equals(host, "localhost", StringComparison.OrdinalIgnoreCase)) return new IPEndPoint(IPAddress.Loopback, port);
        var addresses = Dns.GetHostAddresses(host);
        var chosen = addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses.FirstOrDefault()
            ?? throw new FormatException($"listen host '{host}' resolves to no address");
        return new IPEndPoint(chosen, port);
    }

    /// <summary>"host:port", with brackets around IPv6 literals, as peers write it.</summary>
    public static string Format(IPEndPoint endPoint) =>
        endPoint.AddressFamily == AddressFamily.InterNetworkV6
            ? $"[{endPoint.Address}]:{endPoint.Port.ToString(CultureInfo.InvariantCulture)}"
            : $"{endPoint.Address}:{endPoint.Port.ToString(CultureInfo.InvariantCulture)}";

    /// <summary>
    /// Settings for every connection: no Nagle delay (raft messages are small and latency-bound), and keep-alive so a
    /// peer that vanished without a FIN (power loss, partition) is noticed on connections that are only read.
    /// </summary>
    public static void Configure(Socket socket, TransportOptions options)
    {
        socket.NoDelay = true;
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.KeepAlive, true);
            var seconds = Math.Max(1, (int)options.KeepAliveTime.TotalSeconds);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveTime, seconds);
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveInterval, Math.Max(1, seconds / 3));
            socket.SetSocketOption(SocketOptionLevel.Tcp, SocketOptionName.TcpKeepAliveRetryCount, 3);
        }
        catch (SocketException)
        {
            // Keep-alive tuning is best effort: some platforms refuse some of these options.
        }
        catch (PlatformNotSupportedException)
        {
        }
    }

    /// <summary>Disposes a socket without throwing; used on every error path.</summary>
    public static void Close(Socket? socket)
    {
        if (socket is null) return;
        try
        {
            socket.Dispose();
        }
        catch (Exception)
        {
            // Nothing useful can be done with a failure to close.
        }
    }
}
