using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace RaftKv.Node;

/// <summary>
/// The one reading of "host:port" that flags, joins, the transport and forwarding share, so an address one of them
/// accepts is never refused (or misread) later by another: an address put into the cluster configuration is
/// dialled by every node and turned into URLs for forwarding.
/// </summary>
public static class NetworkAddress
{
    /// <summary>Longest host accepted: a DNS name's limit.</summary>
    public const int MaxHostLength = 253;

    /// <summary>
    /// Splits <c>host:port</c>. The host is empty (every interface, or localhost as a destination), <c>*</c> or
    /// <c>+</c> (every interface), a bracketed IPv6 literal (<c>[::1]:12000</c>, returned without brackets), an IPv4
    /// literal or a host name (letters, digits, '-', '_' and '.'). The port is 0 to 65535 in plain digits. False for
    /// anything else: spaces, signs, paths, schemes, an unbracketed IPv6 literal.
    /// </summary>
    public static bool TryParse(string? address, out string host, out int port)
    {
        host = "";
        port = 0;
        if (string.IsNullOrEmpty(address)) return false;
        var colon = address.LastIndexOf(':');
        if (colon < 0) return false;
        var digits = address.AsSpan(colon + 1);
        if (digits.IsEmpty || !int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port > IPEndPoint.MaxPort)
        {
            port = 0;
            return false;
        }
        var name = address[..colon];
        if (name.StartsWith('['))
        {
            if (!name.EndsWith(']') || !IPAddress.TryParse(name[1..^1], out var ip) || ip.AddressFamily != AddressFamily.InterNetworkV6)
            {
                return false;
            }
            host = name[1..^1];
            return true;
        }
        if (name.Length > MaxHostLength || !IsHostName(name)) return false;
        host = name;
        return true;
    }

    /// <summary>
    /// True for a <c>host:port</c> other nodes and clients can reach: a host is named (not a wildcard such as
    /// <c>0.0.0.0</c>, which would have every node dial itself) and the port is not 0.
    /// </summary>
    public static bool IsDialable(string? address) =>
        TryParse(address, out var host, out var port) && port != 0 && !IsWildcard(host);

    /// <summary>True for the hosts that mean "every interface" when binding: empty, <c>*</c>, <c>+</c>, <c>0.0.0.0</c>, <c>::</c>.</summary>
    public static bool IsWildcard(string host) =>
        host is "" or "*" or "+" || (IPAddress.TryParse(host, out var ip) && (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any)));

    /// <summary>True when two addresses name the same endpoint, treating the loopback spellings (localhost, 127.0.0.1, ::1, an empty host) as one host.</summary>
    public static bool SameEndpoint(string a, string b)
    {
        if (!TryParse(a, out var ha, out var pa) || !TryParse(b, out var hb, out var pb))
        {
            return string.Equals(a, b, StringComparison.OrdinalIgnoreCase);
        }
        return pa == pb && (string.Equals(ha, hb, StringComparison.OrdinalIgnoreCase) || (IsLoopback(ha) && IsLoopback(hb)));
    }

    /// <summary>
    /// True when <paramref name="address"/> ("host:port") can only be reached from this machine: an empty host (read as
    /// localhost), <c>localhost</c>, a <c>*.localhost</c> name or a loopback IP.
    /// </summary>
    public static bool IsLocalOnly(string address) => TryParse(address, out var host, out _) && IsLoopback(host);

    private static bool IsLoopback(string host) =>
        host.Length == 0 || host.Equals("localhost", StringComparison.OrdinalIgnoreCase)
        || host.EndsWith(".localhost", StringComparison.OrdinalIgnoreCase)
        || (IPAddress.TryParse(host.Trim('[', ']'), out var ip) && IPAddress.IsLoopback(ip));

    private static bool IsHostName(string name)
    {
        if (name is "*" or "+") return true;
        foreach (var c in name)
        {
            if (!char.IsAsciiLetterOrDigit(c) && c is not ('-' or '_' or '.')) return false;
        }
        return true;
    }
}
