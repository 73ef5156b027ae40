using System.Net;
using System.Net.Sockets;
using RaftKv.Server.Cli;

namespace RaftKv.Server.Hosting;

/// <summary>
/// Checks, before the node opens its data directory, that nothing already listens on the addresses it will bind:
/// a taken port then fails the start with one line and an untouched data directory, instead of after the node has
/// created its files (and, on a first start, bootstrapped a cluster).
/// </summary>
internal static class PortProbe
{
    /// <summary>Why nothing can listen on <paramref name="address"/>, or null when it looks free.</summary>
    /// <remarks>
    /// Only "address already in use" counts. Anything else (a name that does not resolve, an address not on this host,
    /// a privileged port) is left to the real bind, which reports it: the probe must never refuse a start that would
    /// have worked. The probe allows address reuse, so connections lingering in TIME_WAIT do not count as in use.
    /// There is a window between the probe and the real bind; losing that race gives the later error, as before.
    /// </remarks>
    public static string? InUse(string address)
    {
        if (!HostPort.TrySplit(address, out var host, out var port) || port == 0)
        {
            return null;
        }
        foreach (var ip in Resolve(host))
        {
            using var socket = new Socket(ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
                socket.Bind(new IPEndPoint(ip, port));
                socket.Listen(1);
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse)
            {
                return $"port {port} is already in use (by another raftkvd, or another program)";
            }
            catch (SocketException)
            {
            }
        }
        return null;
    }

    private static IEnumerable<IPAddress> Resolve(string host)
    {
        if (host is "" or "0.0.0.0" or "*" or "+")
        {
            return [IPAddress.Any];
        }
        if (host == "::")
        {
            return [IPAddress.IPv6Any];
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
