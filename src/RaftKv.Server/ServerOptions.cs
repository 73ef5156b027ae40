using RaftKv.Node;
using RaftKv.Node.Transport;

namespace RaftKv.Server;

/// <summary>How the HTTP app behaves. Filled from the command line by <c>raftkvd</c>, or directly by tests and embedders.</summary>
public sealed record ServerOptions
{
    /// <summary>1 MiB: the default for <see cref="MaxBodyBytes"/>.</summary>
    public const long DefaultMaxBodyBytes = 1L << 20;

    /// <summary>64 KiB: the default for <see cref="MaxKeyBytes"/>.</summary>
    public const int DefaultMaxKeyBytes = 64 * 1024;

    /// <summary>
    /// The largest <see cref="MaxBodyBytes"/> a node with the default transport can honour: a body of this size with the
    /// longest key (raftd's <c>POST /db/{key}</c> stores the body as the value) still makes an entry the cluster can
    /// replicate (<see cref="EntryLimits"/>). A JSON body decodes to no more bytes than it has, so the same bound holds
    /// for hraftd's writes with one pair; a write of many small pairs can still be refused by the node with 413.
    /// </summary>
    public static long LargestMaxBodyBytes { get; } = EntryLimits.MaxValueBytes(TransportOptions.Default.MaxFrameSize, DefaultMaxKeyBytes);

    /// <summary>host:port to listen on. "localhost" binds loopback, an IP binds that IP, an empty host or 0.0.0.0 binds all; port 0 picks a free port.</summary>
    public string HttpAddress { get; init; } = "localhost:11000";

    /// <summary>
    /// How long reading a request's body may take (408 after that). The node bounds the rest of the request with its
    /// own <see cref="NodeOptions.RequestTimeout"/>, which raftkvd sets from the same flag.
    /// </summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Largest request body accepted; larger ones get 413 as soon as the excess is seen.</summary>
    public long MaxBodyBytes { get; init; } = DefaultMaxBodyBytes;

    /// <summary>Longest key accepted, in UTF-8 bytes.</summary>
    public int MaxKeyBytes { get; init; } = DefaultMaxKeyBytes;

    /// <summary>Seconds clients are told to wait (Retry-After) on 503.</summary>
    public int RetryAfterSeconds { get; init; } = 1;
}
