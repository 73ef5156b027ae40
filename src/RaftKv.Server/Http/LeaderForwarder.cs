using System.Net;
using System.Net.Http.Headers;
using RaftKv.Node.Routing;

namespace RaftKv.Server.Http;

/// <summary>
/// raftkvd's way to the leader: the node's routing decides to forward, and this carries the typed call (encoded by the
/// node) to <c>POST /raft/forward</c> at the leader's HTTP address, over pooled connections, and brings the leader's
/// answer back. HTTP rather than the raft transport because a node cut off from its peers' raft links may still reach
/// the leader's HTTP port, as it always could, and so forwarded requests never share a connection with heartbeats.
/// </summary>
internal sealed class LeaderForwarder : ILeaderForwarder, IDisposable
{
    /// <summary>The path a leader answers forwarded calls at.</summary>
    public const string Path = "/raft/forward";

    /// <summary>Set on answers to requests served by another node: which leader served the request.</summary>
    public const string LeaderHeader = "X-RaftKv-Leader";

    private static readonly MediaTypeHeaderValue Binary = new("application/octet-stream");

    private readonly ILogger _logger;
    private readonly HttpClient _client;

    /// <summary>Creates a forwarder.</summary>
    public LeaderForwarder(ILogger logger)
    {
        _logger = logger;
        _client = new HttpClient(new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            UseProxy = false,
            UseCookies = false,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(1),
            ConnectTimeout = TimeSpan.FromSeconds(2),
        })
        {
            // The node's request deadline, in the token, is the only clock.
            Timeout = Timeout.InfiniteTimeSpan,
        };
    }

    /// <inheritdoc />
    public async Task<byte[]> ForwardAsync(string leaderId, string? leaderHttpAddress, byte[] call, CancellationToken cancellationToken)
    {
        if (string.IsNullOrEmpty(leaderHttpAddress))
        {
            throw new LeaderUnreachableException($"the HTTP address of the leader {leaderId} is not known yet");
        }
        using var request = new HttpRequestMessage(HttpMethod.Post, "http://" + leaderHttpAddress + Path)
        {
            Content = new ByteArrayContent(call) { Headers = { ContentType = Binary } },
        };
        HttpResponseMessage response;
        try
        {
            response = await _client.SendAsync(request, HttpCompletionOption.ResponseContentRead, cancellationToken);
        }
        catch (HttpRequestException e) when (e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError)
        {
            // Never reached the leader: nothing happened there, so trying again (perhaps elsewhere) is safe.
            _logger.LogInformation("Forwarding to {Leader} at {Address}: unreachable: {Error}", leaderId, leaderHttpAddress, e.Message);
            throw new LeaderUnreachableException($"leader {leaderId} at {leaderHttpAddress} unreachable: {e.Message}");
        }
        catch (HttpRequestException e)
        {
            _logger.LogWarning("Forwarding to {Leader} at {Address} failed: {Error}", leaderId, leaderHttpAddress, e.Message);
            throw new IOException($"forwarding to {leaderHttpAddress} failed: {e.Message}", e);
        }
        using (response)
        {
            if (response.StatusCode == HttpStatusCode.OK)
            {
                return await response.Content.ReadAsByteArrayAsync(cancellationToken);
            }
            // Every call that reaches the node is answered 200 with its result; anything else came before the node
            // (no such path on that server, a refused body), so the call was not served.
            throw new LeaderUnreachableException($"{leaderHttpAddress} did not take the forwarded call: {(int)response.StatusCode}");
        }
    }

    /// <inheritdoc/>
    public void Dispose() => _client.Dispose();
}
