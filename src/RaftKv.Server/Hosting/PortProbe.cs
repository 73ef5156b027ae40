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
    /// a privileged port, no IPv6) is left to the real bind, which reports it: the probe must never refuse a start that
    /// would have worked. Connections lingering in TIME_WAIT do not count as in use (.NET sets SO_REUSEADDR on Unix).
    /// There is a window between the probe and the real bind; losing that race gives the later error, as before.
    /// </remarks>
    /// <param name="address">host:port to check.</param>
    /// <param name="firstAddressOnly">
    /// Check only the address the raft transport binds when the host is a name (its first IPv4 address, else its
    /// first); Kestrel binds every address a name resolves to.
    /// </param>
    public static string? InUse(string address, bool firstAddressOnly)
    {
        if (!HostPort.TrySplit(address, out var host, out var port) || port == 0)
        {
            return null;
        }
        var addresses = Resolve(host).ToList();
        if (firstAddressOnly && addresses.Count > 1)
        {
            addresses = [addresses.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? addresses[0]];
        }
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
