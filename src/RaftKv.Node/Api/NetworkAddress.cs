using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace RaftKv.Node;

/// <summary>
/// A <c>host:port</c> address, read once where it comes in (options, flags, a join) and carried as this value from
/// there. It is the one reading that flags, joins, the transport and forwarding share, so an address one of them
/// accepts is never refused (or misread) later by another: an address put into the cluster configuration is dialled
/// by every node and turned into URLs for forwarding.
/// </summary>
/// <remarks>
/// The host is empty (every interface, or localhost as a destination), <c>*</c> or <c>+</c> (every interface), an IPv6
/// literal (written bracketed, <c>[::1]:12000</c>, and kept here without brackets), an IPv4 literal or a host name
/// (letters, digits, '-', '_' and '.'). The port is 0 to 65535 in plain digits. Anything else is refused: spaces,
/// signs, paths, schemes, an unbracketed IPv6 literal.
/// </remarks>
public readonly record struct NetworkAddress
{
    /// <summary>Longest host accepted: a DNS name's limit.</summary>
    public const int MaxHostLength = 253;

    private NetworkAddress(string host, int port)
    {
        Host = host;
        Port = port;
    }

    /// <summary>The host: a name, an IP literal (IPv6 without brackets), or empty, <c>*</c>, <c>+</c> for every interface.</summary>
    public string Host => field ?? "";

    /// <summary>The port, 0 to 65535 (0: any free port, for binding only).</summary>
    public int Port { get; }

    /// <summary>True when the host means "every interface" when binding: empty, <c>*</c>, <c>+</c>, <c>0.0.0.0</c>, <c>::</c>.</summary>
    public bool IsAnyInterface => IsWildcard(Host);

    /// <summary>
    /// True when other nodes and clients can reach this address: a host is named (not a wildcard such as
    /// <c>0.0.0.0</c>, which would have every node dial itself) and the port is not 0.
    /// </summary>
    public bool IsReachable => Port != 0 && !IsAnyInterface;

    /// <summary>True when only this machine can reach the address: an empty host (read as localhost), <c>localhost</c>, a <c>*.localhost</c> name or a loopback IP.</summary>
    public bool IsLoopback => IsLoopbackHost(Host);

    /// <summary>The same host with another port.</summary>
    public NetworkAddress WithPort(int port)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, IPEndPoint.MaxPort);
        return new NetworkAddress(Host, port);
    }

    /// <summary>The <c>host:port</c> form, an IPv6 host bracketed; <see cref="Parse"/> reads it back to an equal value.</summary>
    public override string ToString()
    {
        var port = Port.ToString(CultureInfo.InvariantCulture);
        return Host.Contains(':') ? $"[{Host}]:{port}" : $"{Host}:{port}";
    }

    /// <summary>True when both name the same endpoint, treating the loopback spellings (localhost, 127.0.0.1, ::1, an empty host) as one host.</summary>
    public bool IsSameEndpoint(NetworkAddress other) =>
        Port == other.Port && (string.Equals(Host, other.Host, StringComparison.OrdinalIgnoreCase) || (IsLoopback && other.IsLoopback));

    /// <summary>Reads <paramref name="text"/>, or returns false.</summary>
    public static bool TryParse(string? text, out NetworkAddress address)
    {
        if (Read(text, out var host, out var port) is not null)
        {
            address = default;
            return false;
        }
        address = new NetworkAddress(host, port);
        return true;
    }

    /// <summary>Why <paramref name="text"/> is not a <c>host:port</c> address (a sentence naming it), or null when it is one.</summary>
    public static string? Problem(string? text) => Read(text, out _, out _);

    /// <summary>Reads <paramref name="text"/>; throws <see cref="FormatException"/> saying what is wrong with it.</summary>
    public static NetworkAddress Parse(string text) =>
        Read(text, out var host, out var port) is { } problem ? throw new FormatException(problem) : new NetworkAddress(host, port);

    /// <summary>
    /// Why <paramref name="text"/> cannot be an address other nodes use (not <c>host:port</c>, port 0, or a host that
    /// means every interface), or null when it can. The sentences are the ones raftkvd's flags print after the flag name.
    /// </summary>
    public static string? ReachableProblem(string? text)
    {
        if (Read(text, out var host, out var port) is { } problem) return problem;
        var address = new NetworkAddress(host, port);
        if (address.Port == 0) return $"\"{text}\" needs a fixed port (0 would pick one other nodes cannot know)";
        return address.IsAnyInterface ? $"\"{text}\" needs a host other nodes can reach (a name or an IP)" : null;
    }

    /// <summary>Splits <c>host:port</c> (see the remarks on <see cref="NetworkAddress"/>); false for anything else.</summary>
    public static bool TryParse(string? address, out string host, out int port)
    {
        var ok = Read(address, out host, out port) is null;
        if (!ok) (host, port) = ("", 0);
        return ok;
    }

    /// <summary>True for a <c>host:port</c> other nodes and clients can reach (see <see cref="IsReachable"/>).</summary>
    public static bool IsDialable(string? address) => TryParse(address, out NetworkAddress parsed) && parsed.IsReachable;

    /// <summary>True for the hosts that mean "every interface" when binding: empty, <c>*</c>, <c>+</c>, <c>0.0.0.0</c>, <c>::</c>.</summary>
    public static bool IsWildcard(string host) =>
        host is "" or "*" or "+" || (IPAddress.TryParse(host, out var ip) && (ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any)));

    /// <summary>True when two addresses name the same endpoint (see <see cref="IsSameEndpoint"/>); unreadable ones are compared as text.</summary>
    public static bool SameEndpoint(string a, string b) =>
        TryParse(a, out NetworkAddress pa) && TryParse(b, out NetworkAddress pb)
            ? pa.IsSameEndpoint(pb)
            : string.Equals(a, b, StringComparison.OrdinalIgnoreCase);

    /// <summary>True when <paramref name="address"/> ("host:port") can only be reached from this machine (see <see cref="IsLoopback"/>).</summary>
    public static bool IsLocalOnly(string address) => TryParse(address, out NetworkAddress parsed) && parsed.IsLoopback;

    /// <summary>The one reading: null and the parts, or why the text is not an address.</summary>
    private static string? Read(string? text, out string host, out int port)
    {
        host = "";
        port = 0;
        var notAddress = $"\"{text}\" is not a host:port address";
        if (string.IsNullOrEmpty(text)) return notAddress;
        var colon = text.LastIndexOf(':');
        if (colon < 0) return notAddress;
        var digits = text.AsSpan(colon + 1);
        if (digits.IsEmpty || !int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out port) || port > IPEndPoint.MaxPort)
        {
            port = 0;
            return notAddress;
        }
        var name = text[..colon];
        if (name.StartsWith('['))
        {
            if (!name.EndsWith(']') || !IPAddress.TryParse(name[1..^1], out var ip) || ip.AddressFamily != AddressFamily.InterNetworkV6)
            {
                port = 0;
                return notAddress;
            }
            host = name[1..^1];
            return null;
        }
        if (name.Length > MaxHostLength || !IsHostName(name))
        {
            port = 0;
            return name.Length > MaxHostLength ? $"\"{text}\" has a host longer than {MaxHostLength} characters" : notAddress;
        }
        host = name;
        return null;
    }

    private static bool IsLoopbackHost(string host) =>
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
