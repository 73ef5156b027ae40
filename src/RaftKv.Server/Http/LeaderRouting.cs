using RaftKv.Node;
using RaftKv.Server.Cli;

namespace RaftKv.Server.Http;

/// <summary>
/// Runs one request against the node and gets it to the leader when this node is not it: forward (default), redirect
/// (<c>?redirect=true</c>), or wait for an election. All within one deadline, the request timeout, which also covers
/// reading the body.
/// </summary>
internal sealed class LeaderRouting : IDisposable
{
    private static readonly TimeSpan FirstPause = TimeSpan.FromMilliseconds(20);
    private static readonly TimeSpan LongestPause = TimeSpan.FromMilliseconds(250);

    private readonly HttpContext _context;
    private readonly ServerContext _server;
    private readonly CancellationTokenSource _deadline;

    /// <summary>Starts the clock for one request.</summary>
    public LeaderRouting(HttpContext context, ServerContext server)
    {
        _context = context;
        _server = server;
        _deadline = CancellationTokenSource.CreateLinkedTokenSource(context.RequestAborted);
        _deadline.CancelAfter(server.Options.RequestTimeout);
    }

    /// <summary>Cancelled when the client goes away or the request timeout passes.</summary>
    public CancellationToken Token => _deadline.Token;

    /// <summary>Reads the body within the deadline and the size limit.</summary>
    public ValueTask<byte[]> ReadBodyAsync() => RequestBody.ReadAsync(_context.Request, _server.Options.MaxBodyBytes, Token);

    /// <summary>
    /// Runs <paramref name="attempt"/>; on NotLeader forwards (or redirects) to the leader, on NoLeader waits and tries again,
    /// until the deadline. <paramref name="body"/> is what gets replayed to the leader.
    /// </summary>
    public async Task RunAsync(Operation operation, ReadOnlyMemory<byte> body, Func<CancellationToken, Task<HttpReply>> attempt)
    {
        var options = _server.Options;
        var wasForwarded = _context.Request.Headers.ContainsKey(LeaderForwarder.ForwardedHeader);
        var redirect = IsTrue(_context.Request.Query["redirect"]);
        var pause = FirstPause;
        HttpReply reply;
        while (true)
        {
            try
            {
                reply = await attempt(Token);
                break;
            }
            catch (NodeException e) when (operation != Operation.Local && e.Kind is NodeErrorKind.NotLeader or NodeErrorKind.NoLeader)
            {
                if (wasForwarded)
                {
                    // Forwarded here by a node that thought this one leads. Say no (the mapping marks it as not-leader),
                    // and let that node retry: forwarding again could loop.
                    reply = ErrorMapping.FromNodeException(e, operation, options);
                    break;
                }
                var problem = e.Kind == NodeErrorKind.NoLeader ? e.Message : "leader unknown";
                if (e.Kind == NodeErrorKind.NotLeader && !string.IsNullOrEmpty(e.LeaderHttpAddress))
                {
                    var leader = HostPort.Normalize(e.LeaderHttpAddress);
                    if (redirect)
                    {
                        reply = Redirect(leader);
                        break;
                    }
                    try
                    {
                        var (outcome, forwardProblem) = await _server.Forwarder.ForwardAsync(_context, leader, body, operation, Token);
                        if (outcome == ForwardOutcome.Answered)
                        {
                            return;
                        }
                        problem = forwardProblem ?? problem;
                    }
                    catch (OperationCanceledException) when (_deadline.IsCancellationRequested && !_context.RequestAborted.IsCancellationRequested)
                    {
                        reply = ErrorMapping.Timeout(operation, $"no answer from leader {leader} within {Durations.Format(options.RequestTimeout)}");
                        break;
                    }
                }

                // No usable leader yet: elections take a moment. Wait a little longer each time, until the deadline.
                try
                {
                    await Task.Delay(pause, Token);
                }
                catch (OperationCanceledException) when (!_context.RequestAborted.IsCancellationRequested)
                {
                    reply = ErrorMapping.NoLeader(problem, options);
                    break;
                }
                pause = TimeSpan.FromTicks(Math.Min(pause.Ticks * 2, LongestPause.Ticks));
            }
            catch (NodeException e)
            {
                reply = ErrorMapping.FromNodeException(e, operation, options);
                break;
            }
            catch (OperationCanceledException) when (_deadline.IsCancellationRequested && !_context.RequestAborted.IsCancellationRequested)
            {
                reply = ErrorMapping.Timeout(operation, $"no answer within {Durations.Format(options.RequestTimeout)}");
                break;
            }
        }
        await reply.WriteAsync(_context.Response);
    }

    private HttpReply Redirect(string leader)
    {
        var location = "http://" + leader + LeaderForwarder.RawTarget(_context);
        return HttpReply.Json(StatusCodes.Status307TemporaryRedirect, w =>
        {
            w.WriteStartObject();
            w.WriteString("leader"u8, leader);
            w.WriteString("location"u8, location);
            w.WriteEndObject();
        }).WithHeader("Location", location);
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
    public void Dispose() => _deadline.Dispose();
}
