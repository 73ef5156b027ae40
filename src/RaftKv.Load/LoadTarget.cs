using System.Text.Json;
using RaftKv.Client;

namespace RaftKv.Load;

/// <summary>How one request ended when the server answered: success (a read may find nothing), or an HTTP status.</summary>
/// <param name="Status">The HTTP status code of the (last) answer.</param>
/// <param name="Success">The request did what it was asked.</param>
/// <param name="Miss">A successful read that found no such key.</param>
public readonly record struct RequestResult(int Status, bool Success, bool Miss);

/// <summary>
/// A cluster the load goes to: how to find the member to send to (the leader) and how to send one write or one read
/// with a raw <see cref="HttpClient"/>. Requests are never retried; the runner counts failures.
/// </summary>
public abstract class LoadTarget
{
    private readonly Lock _discovery = new();
    private Uri? _leader;
    private long _lastDiscovery;
    private bool _discovering;

    /// <summary>Creates a target for the given members (host:port, or a URL with http://).</summary>
    /// <param name="endpoints">One or more members' client addresses.</param>
    /// <exception cref="ArgumentException">No endpoint, or one that is not an address.</exception>
    protected LoadTarget(IReadOnlyList<string> endpoints)
    {
        ArgumentNullException.ThrowIfNull(endpoints);
        if (endpoints.Count == 0)
        {
            throw new ArgumentException("at least one endpoint is needed", nameof(endpoints));
        }
        Endpoints = endpoints.Select(ToBaseUri).ToList();
    }

    /// <summary>"raftkv" or "etcd".</summary>
    public abstract string Name { get; }

    /// <summary>The members given, as base URIs.</summary>
    public IReadOnlyList<Uri> Endpoints { get; }

    /// <summary>Where requests go now (the leader, once <see cref="PrepareAsync"/> has found it).</summary>
    public Uri Leader => Volatile.Read(ref _leader) ?? Endpoints[0];

    /// <summary>Finds the leader, polling until one is known or <paramref name="timeout"/> passes.</summary>
    /// <exception cref="TimeoutException">No member named a leader in time.</exception>
    public async Task PrepareAsync(TimeSpan timeout, CancellationToken cancellationToken = default)
    {
        var deadline = DateTime.UtcNow + timeout;
        string? lastError = null;
        while (true)
        {
            try
            {
                if (await DiscoverLeaderAsync(timeout, cancellationToken).ConfigureAwait(false) is { } leader)
                {
                    Volatile.Write(ref _leader, leader);
                    return;
                }
                lastError = "no leader known yet";
            }
            catch (Exception e) when (e is HttpRequestException or RaftKvException or JsonException or IOException or ArgumentException
                                          || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                lastError = e.Message;
            }
            if (DateTime.UtcNow >= deadline)
            {
                throw new TimeoutException($"{Name}: could not find the leader through {string.Join(", ", Endpoints.Select(e => e.Authority))}: {lastError}");
            }
            await Task.Delay(100, cancellationToken).ConfigureAwait(false);
        }
    }

    /// <summary>Sends one write of <paramref name="key"/>.</summary>
    public abstract Task<RequestResult> WriteAsync(HttpClient http, string key, string value, CancellationToken cancellationToken);

    /// <summary>Sends one read of <paramref name="key"/>.</summary>
    public abstract Task<RequestResult> ReadAsync(HttpClient http, string key, ReadLevel level, CancellationToken cancellationToken);

    /// <summary>
    /// The connection to the leader failed: look for a new leader in the background (at most one search at a time,
    /// at most two a second); requests keep going to the old address until one is found.
    /// </summary>
    public void ReportConnectionError()
    {
        lock (_discovery)
        {
            var now = Environment.TickCount64;
            if (_discovering || now - _lastDiscovery < 500)
            {
                return;
            }
            _discovering = true;
            _lastDiscovery = now;
        }
        _ = Task.Run(async () =>
        {
            try
            {
                if (await DiscoverLeaderAsync(TimeSpan.FromSeconds(2), CancellationToken.None).ConfigureAwait(false) is { } leader)
                {
                    Volatile.Write(ref _leader, leader);
                }
            }
            catch (Exception e) when (e is HttpRequestException or RaftKvException or JsonException or IOException or ArgumentException or OperationCanceledException)
            {
            }
            finally
            {
                lock (_discovery)
                {
                    _discovering = false;
                }
            }
        });
    }

    /// <summary>Asks the members who leads; null when none knows yet.</summary>
    protected abstract Task<Uri?> DiscoverLeaderAsync(TimeSpan timeout, CancellationToken cancellationToken);

    /// <summary>Sends later requests to <paramref name="leader"/> (learned from an answer).</summary>
    protected void MoveTo(Uri leader) => Volatile.Write(ref _leader, leader);

    /// <summary><c>host:port</c> or <c>http://host:port</c> to a base URI.</summary>
    protected static Uri ToBaseUri(string endpoint)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(endpoint);
        var scheme = endpoint.Contains("://", StringComparison.Ordinal);
        var text = scheme ? endpoint : "http://" + endpoint;
        if (!Uri.TryCreate(text, UriKind.Absolute, out var uri) || uri.Scheme is not ("http" or "https") || uri.PathAndQuery != "/"
            || (!scheme && uri.IsDefaultPort && !endpoint.EndsWith(":80", StringComparison.Ordinal)))
        {
            throw new ArgumentException($"\"{endpoint}\" is not a host:port address");
        }
        return new Uri(uri.GetLeftPart(UriPartial.Authority));
    }

    /// <summary>The answer's status, reading (and so releasing) the body.</summary>
    protected static RequestResult Result(HttpResponseMessage response) =>
        new((int)response.StatusCode, response.IsSuccessStatusCode, Miss: false);
}
