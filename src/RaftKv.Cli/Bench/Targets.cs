using System.Net;
using System.Text;
using System.Text.Json;
using RaftKv.Client;

namespace RaftKv.Cli.Bench;

/// <summary>How one request ended when the server answered: success (a read may find nothing), or an HTTP status.</summary>
/// <param name="Status">The HTTP status code of the (last) answer.</param>
/// <param name="Success">The request did what it was asked.</param>
/// <param name="Miss">A successful read that found no such key.</param>
public readonly record struct RequestResult(int Status, bool Success, bool Miss);

/// <summary>
/// A cluster the load goes to: how to find the member to send to (the leader) and how to send one write or one read
/// with a raw <see cref="HttpClient"/>. Requests are never retried; the runner counts failures.
/// </summary>
public abstract class BenchTarget
{
    private readonly Lock _discovery = new();
    private Uri? _leader;
    private long _lastDiscovery;
    private bool _discovering;

    /// <summary>Creates a target for the given members (host:port, or a URL with http://).</summary>
    /// <param name="endpoints">One or more members' client addresses.</param>
    /// <exception cref="ArgumentException">No endpoint, or one that is not an address.</exception>
    protected BenchTarget(IReadOnlyList<string> endpoints)
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

/// <summary>
/// raftkvd: writes are <c>POST /key</c> with <c>{"key":"value"}</c>, reads <c>GET /key/{key}?level=</c> (404 is a miss),
/// all sent to the leader found through <c>/status</c>. When leadership moves, the old leader forwards and names the new
/// one (<c>X-RaftKv-Leader</c>), or redirects (307): later requests go to the new leader.
/// </summary>
public sealed class RaftKvBenchTarget(IReadOnlyList<string> endpoints) : BenchTarget(endpoints)
{
    private static readonly Dictionary<ReadLevel, string> LevelQuery = new()
    {
        [ReadLevel.None] = "?level=none",
        [ReadLevel.Weak] = "?level=weak",
        [ReadLevel.Linearizable] = "?level=linearizable",
        [ReadLevel.Strong] = "?level=strong",
    };

    /// <inheritdoc/>
    public override string Name => "raftkv";

    /// <inheritdoc/>
    public override async Task<RequestResult> WriteAsync(HttpClient http, string key, string value, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(http);
        var body = Encoding.UTF8.GetBytes("{\"" + key + "\":\"" + value + "\"}");
        var leader = Leader;
        using var response = await SendAsync(http, HttpMethod.Post, new Uri(leader, "/key"), body, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.TemporaryRedirect && response.Headers.Location is { } location)
        {
            var moved = new Uri(leader, location);
            MoveTo(new Uri(moved.GetLeftPart(UriPartial.Authority)));
            using var again = await SendAsync(http, HttpMethod.Post, moved, body, cancellationToken).ConfigureAwait(false);
            return Result(again);
        }
        Follow(response, leader);
        return Result(response);
    }

    /// <inheritdoc/>
    public override async Task<RequestResult> ReadAsync(HttpClient http, string key, ReadLevel level, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(http);
        var leader = Leader;
        var uri = new Uri(leader, "/key/" + Uri.EscapeDataString(key) + LevelQuery[level]);
        using var response = await SendAsync(http, HttpMethod.Get, uri, null, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode == HttpStatusCode.TemporaryRedirect && response.Headers.Location is { } location)
        {
            var moved = new Uri(leader, location);
            MoveTo(new Uri(moved.GetLeftPart(UriPartial.Authority)));
            using var again = await SendAsync(http, HttpMethod.Get, moved, null, cancellationToken).ConfigureAwait(false);
            return ReadResult(again);
        }
        Follow(response, leader);
        return ReadResult(response);
    }

    /// <inheritdoc/>
    protected override async Task<Uri?> DiscoverLeaderAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        // The client's discovery: the first member that answers /status names the leader.
        using var client = new RaftKvClient(new RaftKvClientOptions
        {
            Endpoints = Endpoints.Select(e => e.Authority).ToList(),
            Timeout = timeout,
        });
        var status = await client.GetStatusAsync(cancellationToken: cancellationToken).ConfigureAwait(false);
        return status.Leader is { HttpAddress.Length: > 0 } leader ? ToBaseUri(leader.HttpAddress) : null;
    }

    private static async Task<HttpResponseMessage> SendAsync(HttpClient http, HttpMethod method, Uri uri, byte[]? body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(method, uri);
        if (body is not null)
        {
            request.Content = new ByteArrayContent(body);
            request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
        }
        // The default completion option reads the whole body, so the time measured covers the complete answer.
        return await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    private static RequestResult ReadResult(HttpResponseMessage response) => response.StatusCode == HttpStatusCode.NotFound
        ? new RequestResult(404, Success: true, Miss: true)
        : Result(response);

    /// <summary>A follower that forwarded the request names the leader: go there directly from now on.</summary>
    private void Follow(HttpResponseMessage response, Uri leader)
    {
        if (response.Headers.TryGetValues(RaftKvClient.LeaderHeader, out var values)
            && values.FirstOrDefault() is { Length: > 0 } named
            && !string.Equals(named, leader.Authority, StringComparison.OrdinalIgnoreCase))
        {
            try
            {
                MoveTo(ToBaseUri(named));
            }
            catch (ArgumentException)
            {
            }
        }
    }
}

/// <summary>
/// etcd v3 through its JSON gateway: <c>POST /v3/kv/put</c> and <c>POST /v3/kv/range</c> with base64 keys and values,
/// sent to the leader's client URL (found with <c>/v3/maintenance/status</c> and <c>/v3/cluster/member/list</c>).
/// Ranges are linearizable for levels linearizable and strong, serializable (local) for none and weak.
/// </summary>
public sealed class EtcdBenchTarget(IReadOnlyList<string> endpoints) : BenchTarget(endpoints)
{
    /// <inheritdoc/>
    public override string Name => "etcd";

    /// <inheritdoc/>
    public override async Task<RequestResult> WriteAsync(HttpClient http, string key, string value, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(http);
        var body = "{\"key\":\"" + B64(key) + "\",\"value\":\"" + B64(value) + "\"}";
        using var response = await PostAsync(http, new Uri(Leader, "/v3/kv/put"), body, cancellationToken).ConfigureAwait(false);
        return Result(response);
    }

    /// <inheritdoc/>
    public override async Task<RequestResult> ReadAsync(HttpClient http, string key, ReadLevel level, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(http);
        var body = level is ReadLevel.None or ReadLevel.Weak
            ? "{\"key\":\"" + B64(key) + "\",\"serializable\":true}"
            : "{\"key\":\"" + B64(key) + "\"}";
        using var response = await PostAsync(http, new Uri(Leader, "/v3/kv/range"), body, cancellationToken).ConfigureAwait(false);
        if (!response.IsSuccessStatusCode)
        {
            return Result(response);
        }
        // An empty range leaves out "kvs".
        var bytes = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        return new RequestResult((int)response.StatusCode, Success: true, Miss: bytes.AsSpan().IndexOf("\"kvs\""u8) < 0);
    }

    /// <inheritdoc/>
    protected override async Task<Uri?> DiscoverLeaderAsync(TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var http = new HttpClient { Timeout = timeout };
        Exception? last = null;
        foreach (var endpoint in Endpoints)
        {
            try
            {
                using var status = await PostJsonAsync(http, new Uri(endpoint, "/v3/maintenance/status"), cancellationToken).ConfigureAwait(false);
                if (!status.RootElement.TryGetProperty("leader", out var leaderId) || leaderId.GetString() is not { Length: > 0 } id || id == "0")
                {
                    continue;
                }
                var self = status.RootElement.GetProperty("header").GetProperty("member_id").GetString();
                if (self == id)
                {
                    return endpoint;
                }
                using var members = await PostJsonAsync(http, new Uri(endpoint, "/v3/cluster/member/list"), cancellationToken).ConfigureAwait(false);
                foreach (var member in members.RootElement.GetProperty("members").EnumerateArray())
                {
                    if (member.GetProperty("ID").GetString() == id && member.TryGetProperty("clientURLs", out var urls) && urls.GetArrayLength() > 0)
                    {
                        return ToBaseUri(urls[0].GetString()!);
                    }
                }
                return endpoint;
            }
            catch (Exception e) when (e is HttpRequestException or JsonException or KeyNotFoundException or InvalidOperationException or ArgumentException
                                          || (e is OperationCanceledException && !cancellationToken.IsCancellationRequested))
            {
                last = e;
            }
        }
        return last is null ? null : throw new HttpRequestException(last.Message, last);
    }

    private static string B64(string text) => Convert.ToBase64String(Encoding.UTF8.GetBytes(text));

    private static async Task<HttpResponseMessage> PostAsync(HttpClient http, Uri uri, string body, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Post, uri) { Content = new ByteArrayContent(Encoding.UTF8.GetBytes(body)) };
        request.Content.Headers.TryAddWithoutValidation("Content-Type", "application/json");
        return await http.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<JsonDocument> PostJsonAsync(HttpClient http, Uri uri, CancellationToken cancellationToken)
    {
        using var response = await PostAsync(http, uri, "{}", cancellationToken).ConfigureAwait(false);
        response.EnsureSuccessStatusCode();
        var text = await response.Content.ReadAsStringAsync(cancellationToken).ConfigureAwait(false);
        return JsonDocument.Parse(text);
    }
}
