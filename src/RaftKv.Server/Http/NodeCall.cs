using RaftKv.Node;
using RaftKv.Node.Routing;
using RaftKv.Server.CommandLine;

namespace RaftKv.Server.Http;

/// <summary>
/// One HTTP request's call into the node: reads the body (within the request timeout), calls the node, and maps the
/// result or the node's error to a reply. Whether the request is served here or forwarded to the leader is the
/// node's decision (its <see cref="LeaderRouter"/>), and the node enforces the request timeout; what is left here is
/// <c>?redirect=true</c>, which asks the node to refuse rather than forward and answers that refusal with 307.
/// </summary>
internal sealed class NodeCall : IDisposable
{
    private readonly HttpContext _context;
    private readonly ServerContext _server;
    private CancellationTokenSource? _bodyDeadline;

    /// <summary>A call for one request.</summary>
    public NodeCall(HttpContext context, ServerContext server)
    {
        _context = context;
        _server = server;
    }

    /// <summary>Reads the body within the request timeout (408 after it) and the size limit.</summary>
    public ValueTask<byte[]> ReadBodyAsync()
    {
        // This clock covers the body only: once it is in, the node bounds the rest with its own request timeout.
        _bodyDeadline = CancellationTokenSource.CreateLinkedTokenSource(_context.RequestAborted);
        _bodyDeadline.CancelAfter(_server.Options.RequestTimeout);
        return RequestBody.ReadAsync(_context.Request, _server.Options.MaxBodyBytes, _bodyDeadline.Token);
    }

    /// <summary>
    /// Runs <paramref name="attempt"/> against the node (its redirecting view under <c>?redirect=true</c>) and writes
    /// the reply. <paramref name="needsLeader"/> says whether a follower hands the request to the leader (writes,
    /// membership changes, weak and strong reads), which decides the <c>X-RaftKv-Leader</c> header on the answer.
    /// </summary>
    public async Task RunAsync(Operation operation, Func<IKvNode, CancellationToken, Task<HttpReply>> attempt, bool? needsLeader = null)
    {
        var options = _server.Options;
        var leaderOnly = needsLeader ?? operation is Operation.Write or Operation.Admin;
        var routed = _server.Node as IRoutedNode;
        var redirect = IsTrue(_context.Request.Query["redirect"]) && operation != Operation.Local;
        var node = redirect && routed is not null ? routed.Redirecting : _server.Node;
        HttpReply reply;
        try
        {
            reply = await attempt(node, _context.RequestAborted);
        }
        catch (NodeException e) when (redirect && e.Kind == NodeErrorKind.NotLeader && !string.IsNullOrEmpty(e.LeaderHttpAddress))
        {
            reply = Redirect(HostPort.Normalize(e.LeaderHttpAddress));
            leaderOnly = false;
        }
        catch (NodeException e)
        {
            reply = ErrorMapping.FromNodeException(e, operation, options);
            leaderOnly &= e.Kind is not (NodeErrorKind.NotLeader or NodeErrorKind.NoLeader);
        }
        catch (OperationCanceledException) when (!_context.RequestAborted.IsCancellationRequested)
        {
            reply = ErrorMapping.Timeout(operation, "no answer within the request timeout");
        }
        // Served by the leader on this node's behalf: say which, so a client can go there directly next time.
        if (leaderOnly && routed?.Leader is { LeaderIsElsewhere: true, LeaderHttpAddress: { } leader })
        {
            reply = reply.WithHeader(LeaderForwarder.LeaderHeader, leader);
        }
        await reply.WriteAsync(_context.Response);
    }

    private HttpReply Redirect(string leader)
    {
        var location = "http://" + leader + RawTarget(_context);
        return HttpReply.Json(StatusCodes.Status307TemporaryRedirect, w =>
        {
            w.WriteStartObject();
            w.WriteString("leader"u8, leader);
            w.WriteString("location"u8, location);
            w.WriteEndObject();
        }).WithHeader("Location", location);
    }

    /// <summary>The path and query exactly as the client sent them (prefix included), so a redirect re-encodes nothing.</summary>
    private static string RawTarget(HttpContext context)
    {
        var raw = context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpRequestFeature>()?.RawTarget;
        if (raw is { Length: > 0 } && raw[0] == '/')
        {
            return raw;
        }
        var request = context.Request;
        return request.PathBase.Add(request.Path).ToUriComponent() + request.QueryString.ToUriComponent();
    }

    /// <summary>
    /// <c>?redirect</c>: absent, "0" or "false" forwards; present bare, "1" or "true" redirects. Anything else is 400:
    /// a client that meant to redirect must not have its write forwarded and applied instead.
    /// </summary>
    private static bool IsTrue(Microsoft.Extensions.Primitives.StringValues values)
    {
        if (values.Count == 0) return false;
        var value = values[0];
        if (value is "" or "1" || string.Equals(value, "true", StringComparison.OrdinalIgnoreCase)) return true;
        if (value is "0" || string.Equals(value, "false", StringComparison.OrdinalIgnoreCase)) return false;
        throw new RequestException(StatusCodes.Status400BadRequest, $"invalid redirect value \"{value}\": use true or false");
    }

    /// <inheritdoc/>
    public void Dispose() => _bodyDeadline?.Dispose();
}
