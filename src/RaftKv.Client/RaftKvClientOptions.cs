namespace RaftKv.Client;

/// <summary>Settings for a <see cref="RaftKvClient"/>. Every property has a usable default except <see cref="Endpoints"/>.</summary>
public sealed class RaftKvClientOptions
{
    /// <summary>
    /// HTTP addresses of cluster members to start from: <c>host:port</c>, <c>:port</c> (meaning localhost) or
    /// <c>http://host:port</c>. One live member is enough; the client learns the leader from the cluster.
    /// Default: <c>localhost:11000</c>.
    /// </summary>
    public IReadOnlyList<string> Endpoints { get; init; } = ["localhost:11000"];

    /// <summary>
    /// The longest one call may take, retries and back-off included. Each method takes an optional override.
    /// Default: 10 seconds (longer than the server's own 5 s request timeout, so a server that waits out an election
    /// still answers within it).
    /// </summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The longest a single HTTP attempt may take before the client gives up on that node, or null for no limit beyond
    /// <see cref="Timeout"/>. A read that runs out is retried elsewhere; a write that runs out is reported as
    /// indeterminate (<see cref="RaftKvIndeterminateException"/>), because it may have reached the log.
    /// </summary>
    public TimeSpan? AttemptTimeout { get; init; }

    /// <summary>How many times a failed attempt that is safe to repeat is retried (so at most 1 + this many attempts). Default: 10.</summary>
    public int MaxRetries { get; init; } = 10;

    /// <summary>Back-off before the first retry; it doubles each retry up to <see cref="MaxBackoff"/>, with jitter. Default: 50 ms.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Longest back-off between two attempts (also caps the server's Retry-After). Default: 1 second.</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Read level used when a call does not name one. Default: <see cref="ReadLevel.Linearizable"/>, as the server's.</summary>
    public ReadLevel DefaultReadLevel { get; init; } = ReadLevel.Linearizable;

    /// <summary>
    /// Ask followers for a 307 redirect to the leader (<c>?redirect=true</c>) instead of letting them forward the request.
    /// Either way the client learns the leader and sends it the next request directly. Default: false (forwarding).
    /// </summary>
    public bool PreferRedirects { get; init; }

    /// <summary>How long to wait for a TCP connection to a node. Default: 2 seconds.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(2);
}
