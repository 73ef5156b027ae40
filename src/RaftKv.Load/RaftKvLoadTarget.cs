using System.Net;
using System.Text;
using RaftKv.Client;

namespace RaftKv.Load;

/// <summary>
/// raftkvd: writes are <c>POST /key</c> with <c>{"key":"value"}</c>, reads <c>GET /key/{key}?level=</c> (404 is a miss),
/// all sent to the leader found through <c>/status</c>. When leadership moves, the old leader forwards and names the new
/// one (<c>X-RaftKv-Leader</c>), or redirects (307): later requests go to the new leader.
/// </summary>
public sealed class RaftKvLoadTarget(IReadOnlyList<string> endpoints) : LoadTarget(endpoints)
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
