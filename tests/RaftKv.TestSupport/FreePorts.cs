using System.Net;
using System.Net.Sockets;

namespace RaftKv.TestSupport;

/// <summary>Ports for tests that must name a port before the server that binds it starts.</summary>
public static class FreePorts
{
    // Ports handed out by this process: a port is free until its server binds it, so two picks a moment apart (a
    // node's HTTP and raft ports) could otherwise be the same one.
    private static readonly HashSet<int> s_handedOut = [];

    /// <summary>
    /// A free port for a server (a raftkvd process, or one in the test's own process) to bind a moment later. Not one
    /// the OS picks: those come from the ephemeral range, where any outgoing connection (the tests make many, in
    /// parallel) may take the port before the server binds it. A random port below that range, checked free, is left
    /// alone by everything but another test's pick.
    /// </summary>
    public static int Pick()
    {
        const int floor = 10_000;
        var ceiling = EphemeralRangeStart() - 1;
        for (var attempt = 0; attempt < 100 && ceiling - floor >= 1_000; attempt++)
        {
            var port = Random.Shared.Next(floor, ceiling + 1);
            lock (s_handedOut)
            {
                // A long soak may go through a good part of the range: start over rather than run out.
                if (s_handedOut.Count > (ceiling - floor) / 2) s_handedOut.Clear();
                if (!s_handedOut.Add(port)) continue;
            }
            try
            {
                using var probe = new TcpListener(IPAddress.Loopback, port);
                probe.Start();
                return port;
            }
            catch (SocketException)
            {
            }
        }
        using var l = new TcpListener(IPAddress.Loopback, 0);
        l.Start();
        return ((IPEndPoint)l.LocalEndpoint).Port;
    }

    private static int EphemeralRangeStart()
    {
        try
        {
            var first = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries)[0];
            return int.Parse(first, System.Globalization.CultureInfo.InvariantCulture);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException or IndexOutOfRangeException)
        {
            return 32_768; // Linux's default
        }
    }
}
