using RaftKv.Node;

namespace RaftKv.Server.CommandLine;

/// <summary>host:port helpers shared by the flags, the join logic and forwarding.</summary>
public static class HostPort
{
    /// <summary>
    /// Makes an address usable as a destination: strips an http:// prefix and a trailing slash, and reads ":11000"
    /// as "localhost:11000" (hraftd's <c>-join :11000</c>).
    /// </summary>
    public static string Normalize(string address)
    {
        var a = address.Trim();
        if (a.StartsWith("http://", StringComparison.OrdinalIgnoreCase))
        {
            a = a["http://".Length..];
        }
        a = a.TrimEnd('/');
        if (a.StartsWith(':'))
        {
            a = "localhost" + a;
        }
        return a;
    }

    /// <summary>
    /// True when <paramref name="address"/> can only be reached from this machine: an empty host (read as localhost),
    /// <c>localhost</c> or a loopback IP.
    /// </summary>
    public static bool IsLocalOnly(string address) => NetworkAddress.IsLocalOnly(Normalize(address));

    /// <summary>True when two addresses name the same endpoint once normalized (see <see cref="NetworkAddress.SameEndpoint"/>).</summary>
    public static bool SameEndpoint(string a, string b) => NetworkAddress.SameEndpoint(Normalize(a), Normalize(b));
}
