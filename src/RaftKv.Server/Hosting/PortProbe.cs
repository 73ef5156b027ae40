using System.Net;
using System.Net.Sockets;
using RaftKv.Node;
using RaftKv.Node.Transport;

namespace RaftKv.Server.Hosting;

/// <summary>
/// Checks, before the node opens its data directory, that nothing already listens on the addresses it will bind:
/// a taken port then fails the start with one line and an untouched data directory, instead of after the node has
/// created its files (and, on a first start, bootstrapped a cluster).
/// </summary>
/// <remarks>
/// What counts is what would make the real bind fail too: the address in use, an address that is not this host's, a
/// port this process may not bind, a name that does not resolve. Anything else (no IPv6, say) is left to the real
/// bind: the probe must never refuse a start that would have worked. Connections lingering in TIME_WAIT do not count
/// as in use (.NET sets SO_REUSEADDR on Unix). There is a window between the probe and the real bind; losing that
/// race gives the later error (after the node has opened its data directory).
/// </remarks>
internal static class PortProbe
{
    /// <summary>Why Kestrel could not listen on <paramref name="address"/> (every address a name resolves to), or null when it looks free.</summary>
    public static string? HttpInUse(string address)
    {
        if (!NetworkAddress.TryParse(address, out var host, out var port) || port == 0)
        {
            return null;
        }
        var addresses = ResolveLikeKestrel(host);
        return addresses.Count == 0 ? $"host {host} does not resolve to any address" : FirstTaken(addresses, port);
    }

    /// <summary>Why the raft transport could not listen on <paramref name="address"/>, or null when it looks free.</summary>
    public static string? RaftInUse(string address)
    {
        IPEndPoint endPoint;
        try
        {
            endPoint = TcpTransport.ListenEndPoint(address);
        }
        catch (FormatException)
        {
            return null;
        }
        catch (SocketException e)
        {
            return $"cannot resolve it: {e.Message}";
        }
        return endPoint.Port == 0 ? null : FirstTaken([endPoint.Address], endPoint.Port);
    }

    private static string? FirstTaken(IEnumerable<IPAddress> addresses, int port)
    {
        foreach (var ip in addresses)
        {
            try
            {
                // Bound as Kestrel and the raft transport bind: no ReuseAddress (on Linux it adds SO_REUSEPORT, and the
                // probe would then pass on a port another raftkvd's transport holds).
                using var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
                socket.Bind(new IPEndPoint(ip, port));
                socket.Listen(1);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                return $"port {port} is already in use (by another raftkvd, or another program)";
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressNotAvailable)
            {
                return $"{ip} is not an address of this machine";
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AccessDenied)
            {
                return $"not allowed to listen on port {port} (ports below 1024 need privileges)";
            }
            catch (SocketException)
            {
            }
        }
        return null;
    }

    // The addresses ServerApp.Listen has Kestrel bind for a host (for "localhost", the IPv4 one of the two it binds).
    private static IReadOnlyList<IPAddress> ResolveLikeKestrel(string host)
    {
        if (host is "" or "0.0.0.0" or "*" or "+")
        {
            return [IPAddress.Any];
        }
        if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            return [IPAddress.Loopback];
        }
        if (IPAddress.TryParse(host, out var ip))
        {
            return [ip];
        }
        try
        {
            return Dns.GetHostAddresses(host);
        }
        catch (SocketException)
        {
            return [];
        }
    }
}
