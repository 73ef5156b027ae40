using System.Net;
using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;

namespace RaftKv.Server.Http;

/// <summary>What came of trying to forward a request.</summary>
internal enum ForwardOutcome
{
    /// <summary>The leader's answer (or a definitive error) was written to the client.</summary>
    Answered,

    /// <summary>Nothing was done there (it was not the leader after all, or could not be reached): ask again and retry.</summary>
    Retry,
}

/// <summary>
/// Replays a request (method, path, query, body) to the leader's HTTP address and relays the answer. The request is
/// marked with <see cref="ForwardedHeader"/>, and a node never forwards a marked request again: with stale leader
/// information two nodes could otherwise bounce a request between them until it timed out.
/// </summary>
internal sealed class LeaderForwarder : IDisposable
{
    /// <summary>Marks a forwarded request; its value is the forwarding node's id.</summary>
    public const string ForwardedHeader = "X-RaftKv-Forwarded";

    /// <summary>Set on relayed answers: which leader served the request.</summary>
    public const string LeaderHeader = "X-RaftKv-Leader";

    /// <summary>Headers worth carrying back from the leader.</summary>
    private static readonly string[] RelayedHeaders =
        [HeaderNames.RetryAfter, HeaderNames.Location, HeaderNames.Allow, ServerApp.IndexHeader];

    private readonly string _nodeId;
    private readonly ILogger _logger;
    private readonly HttpClient _client;

    /// <summary>Creates a forwarder for the node <paramref name="nodeId"/>.</summary>
    public LeaderForwarder(string nodeId, ILogger logger)
    {
        _nodeId = nodeId;
        _logger = logger;
        _client = new HttpClient(new SocketsHttpHandler
        {
            // The leader's redirects (if a client asked for them) go back to the client, not followed here.
            AllowAutoRedirect = false,
            UseProxy = false,
            UseCookies = false,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
            ConnectTimeout = TimeSpan.FromSeconds(2),
        })
        {
            // Each request carries its own deadline (what is left of the request timeout).
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    /// <summary>Forwards the current request to <paramref name="leaderHttpAddress"/>.</summary>
    public async Task<(ForwardOutcome Outcome, string? Problem)> ForwardAsync(
        HttpContext context, string leaderHttpAddress, ReadOnlyMemory<byte> body, Operation operation, CancellationToken cancellationToken)
    {
        var request = context.Request;
        var target = "http://" + leaderHttpAddress + RawTarget(context);
        // Sent exactly as received: a canonicalizing Uri would turn '\' into '/' and drop "." and ".." segments (even
        // %2e ones), so a key such as "a\b" or "p/../q" would reach the leader as another key.
        if (!Uri.TryCreate(target, new UriCreationOptions { DangerousDisablePathAndQueryCanonicalization = true }, out var uri))
        {
            return (ForwardOutcome.Retry, $"the leader's HTTP address {leaderHttpAddress} is not usable");
        }
        using var message = new HttpRequestMessage(new HttpMethod(request.Method), uri);
        if (!body.IsEmpty || HttpMethods.IsPost(request.Method) || HttpMethods.IsPut(request.Method))
        {
            message.Content = new ReadOnlyMemoryContent(body);
            if (request.ContentType is { } contentType)
            {
                message.Content.Headers.TryAddWithoutValidation(HeaderNames.ContentType, contentType);
            }
        }
        message.Headers.TryAddWithoutValidation(ForwardedHeader, _nodeId);
        if (request.Headers.Accept.Count > 0)
        {
            message.Headers.TryAddWithoutValidation(HeaderNames.Accept, request.Headers.Accept.ToArray());
        }

        HttpResponseMessage response;
        try
        {
            response = await _client.SendAsync(message, HttpCompletionOption.ResponseContentRead, cancellationToken);
        }
        catch (HttpRequestException e) when (e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError)
        {
            // The request never reached the leader: nothing happened there, so trying again (perhaps elsewhere) is safe.
            _logger.LogInformation("Forwarding {Method} {Target}: leader unreachable: {Error}", request.Method, target, e.Message);
            return (ForwardOutcome.Retry, $"leader {leaderHttpAddress} unreachable: {e.Message}");
        }
        catch (HttpRequestException e)
        {
            _logger.LogWarning("Forwarding {Method} {Target} failed: {Error}", request.Method, target, e.Message);
            var maybe = operation is Operation.Write or Operation.Admin ? "; the write may or may not have been applied" : "";
            await HttpReply.Error(StatusCodes.Status502BadGateway, $"forwarding to leader {leaderHttpAddress} failed: {e.Message}{maybe}")
                .WriteAsync(context.Response);
            return (ForwardOutcome.Answered, null);
        }

        using (response)
        {
            if (response.Headers.Contains(ErrorMapping.NotLeaderHeader))
            {
                // Our leader information was stale: that node did nothing and says so. Safe to retry.
                _logger.LogDebug("Forwarded {Method} {Target}: not the leader there", request.Method, target);
                return (ForwardOutcome.Retry, $"{leaderHttpAddress} is no longer the leader");
            }
            var outgoing = context.Response;
            outgoing.StatusCode = (int)response.StatusCode;
            foreach (var name in RelayedHeaders)
            {
                if (response.Headers.TryGetValues(name, out var values) || response.Content.Headers.TryGetValues(name, out values))
                {
                    outgoing.Headers[name] = values.ToArray();
                }
            }
            outgoing.Headers[LeaderHeader] = leaderHttpAddress;
            // Buffered already (ResponseContentRead); written with the client's token only, so the deadline cannot cut an answer in half.
            var bytes = await response.Content.ReadAsByteArrayAsync(context.RequestAborted);
            if (response.Content.Headers.ContentType is { } type)
            {
                outgoing.ContentType = type.ToString();
            }
            outgoing.ContentLength = bytes.Length;
            await outgoing.Body.WriteAsync(bytes, context.RequestAborted);
            _logger.LogDebug("Forwarded {Method} {Target}: {Status}", request.Method, target, (int)response.StatusCode);
            return (ForwardOutcome.Answered, null);
        }
    }

    /// <summary>The path and query exactly as the client sent them (prefix included), so nothing is re-encoded on the way.</summary>
    public static string RawTarget(HttpContext context)
    {
        var raw = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget;
        if (raw is { Length: > 0 } && raw[0] == '/')
        {
            return raw;
        }
        var request = context.Request;
        return request.PathBase.Add(request.Path).ToUriComponent() + request.QueryString.ToUriComponent();
    }

    /// <inheritdoc/>
    public void Dispose() => _client.Dispose();
}
