using System.Net.Sockets;
using System.Text.Json;

namespace RaftKv.Client;

/// <summary>How a call is sent, retried and classified. See the class remarks for the policy.</summary>
public sealed partial class RaftKvClient
{
    /// <summary>Redirect hops followed within one attempt (a follower points at the leader: one hop is the norm).</summary>
    private const int MaxRedirects = 5;

    private const string NotLeaderHeader = "X-RaftKv-Not-Leader";

    /// <summary>
    /// Sends <paramref name="call"/> until it gets an answer, retrying what is safe within the time limit. Returns 2xx
    /// answers (and 404 when the call accepts it); throws for everything else.
    /// </summary>
    private async Task<Reply> RunAsync(Call call, TimeSpan? timeout, CancellationToken cancellationToken)
    {
        var limit = timeout ?? _options.Timeout;
        if (limit <= TimeSpan.Zero)
        {
            throw new ArgumentOutOfRangeException(nameof(timeout), timeout, "timeout must be positive");
        }
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(limit);
        var maxRetries = call.MaxRetriesOverride >= 0 ? call.MaxRetriesOverride : _options.MaxRetries;
        var started = Environment.TickCount64;
        for (var retry = 0; ; retry++)
        {
            var endpoint = call.Endpoint ?? _view.Choose(call.NeedsLeader);
            var attempt = await AttemptAsync(call, endpoint, deadline.Token, limit, cancellationToken).ConfigureAwait(false);
            if (attempt.Reply is { } reply)
            {
                if (reply.IsSuccess || (reply.Status == 404 && call.AcceptNotFound))
                {
                    return reply;
                }
                throw Terminal(call, reply);
            }
            var failure = attempt.Failure!;
            if (!attempt.Retryable)
            {
                throw failure;
            }
            if (retry >= maxRetries)
            {
                throw GaveUp(failure, $"after {retry + 1} attempts");
            }
            try
            {
                await Task.Delay(_backoff.Delay(retry, attempt.RetryAfter), deadline.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                throw GaveUp(failure, $"after {retry + 1} attempts in {Elapsed(started)} (timeout {limit.TotalSeconds:0.###}s)");
            }
        }
    }

    /// <summary>One attempt at one node, following redirects; never throws for the cluster's failures, only classifies them.</summary>
    private async Task<Attempt> AttemptAsync(Call call, string endpoint, CancellationToken deadline, TimeSpan limit, CancellationToken cancellationToken)
    {
        var uri = new Uri("http://" + endpoint + call.PathAndQuery);
        for (var hop = 0; ; hop++)
        {
            using var attemptLimit = CancellationTokenSource.CreateLinkedTokenSource(deadline);
            if (_options.AttemptTimeout is { } perAttempt)
            {
                attemptLimit.CancelAfter(perAttempt);
            }
            // A write always carries tracked content (empty for DELETE) so we know whether it may have left.
            var content = call.Body is not null || call.Kind == CallKind.Write
                ? new SentTrackingContent(call.Body ?? [], call.Body is { Length: > 0 } ? "application/json" : null)
                : null;
            using var request = new HttpRequestMessage(call.Method, uri) { Content = content };
            HttpResponseMessage response;
            string body;
            try
            {
                response = await _http.SendAsync(request, HttpCompletionOption.ResponseContentRead, attemptLimit.Token).ConfigureAwait(false);
                body = await response.Content.ReadAsStringAsync(attemptLimit.Token).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                return TransportFailure(call, endpoint, content, e);
            }
            catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
            {
                return TimedOut(call, endpoint, content, deadline.IsCancellationRequested, limit, e);
            }

            using (response)
            {
                var status = (int)response.StatusCode;
                _view.MarkHealthy(endpoint);
                if (status is 307 or 308 && response.Headers.Location is { } location && hop < MaxRedirects)
                {
                    // A follower pointing at the leader: nothing was done there, so going on is safe.
                    uri = location.IsAbsoluteUri ? location : new Uri(uri, location);
                    endpoint = uri.Authority;
                    _view.LearnLeader(endpoint);
                    continue;
                }
                if (response.Headers.TryGetValues(LeaderHeader, out var leaders) && leaders.FirstOrDefault() is { Length: > 0 } leader)
                {
                    _view.LearnLeader(leader);
                }
                else if (status is >= 200 and < 300 && call.Kind == CallKind.Write)
                {
                    // Only the leader applies a write itself; an answer without the forwarding header came from it.
                    _view.LearnLeader(endpoint);
                }
                var reply = new Reply(status, body, endpoint, response.Headers, status >= 300 ? ErrorText(body, response) : null);
                return status == 503 ? Unavailable(call, reply, response) : Classify(call, reply);
            }
        }
    }

    /// <summary>Every status but 503: a final answer, or for reads a failure worth trying elsewhere.</summary>
    private static Attempt Classify(Call call, Reply reply)
    {
        var write = call.Kind == CallKind.Write;
        switch (reply.Status)
        {
            case < 300 or 404 or 400 or 413:
                return Attempt.Answered(reply);
            case 504:
                // The node gave up waiting: a write may still commit.
                return write
                    ? Attempt.Fail(Indeterminate(call, reply.Endpoint, reply.Status, reply.ServerMessage, null))
                    : Attempt.Retry(new RaftKvTimeoutException($"{call.Description}: {reply.ServerMessage}", reply.Status, reply.ServerMessage, reply.Endpoint));
            case 502:
                // A follower could not finish forwarding to the leader: the leader may have the write.
                return write
                    ? Attempt.Fail(Indeterminate(call, reply.Endpoint, reply.Status, reply.ServerMessage, null))
                    : Attempt.Retry(new RaftKvUnavailableException($"{call.Description}: {reply.ServerMessage}", reply.Status, reply.ServerMessage, reply.Endpoint));
            case >= 500:
                // An internal error says nothing about whether the write got into the log.
                return write
                    ? Attempt.Fail(Indeterminate(call, reply.Endpoint, reply.Status, reply.ServerMessage, null))
                    : Attempt.Answered(reply);
            default:
                return Attempt.Answered(reply);
        }
    }

    /// <summary>
    /// 503. The server says which kind: "no leader" / "not the leader" (never proposed), "busy" (refused before
    /// proposing), "not applied" (proposed, then lost to a leadership change: certainly not applied) are safe to retry
    /// for any call. "unavailable" is also given to writes that were waiting when the node shut down, which may
    /// still commit, so for a write it is indeterminate.
    /// </summary>
    private Attempt Unavailable(Call call, Reply reply, HttpResponseMessage response)
    {
        var message = reply.ServerMessage ?? "";
        var retryAfter = response.Headers.RetryAfter?.Delta;
        var notLeader = response.Headers.Contains(NotLeaderHeader)
            || message.StartsWith("no leader", StringComparison.Ordinal)
            || message.StartsWith("not the leader", StringComparison.Ordinal);
        if (notLeader || message.StartsWith("not applied", StringComparison.Ordinal))
        {
            _view.ForgetLeader(reply.Endpoint);
            if (LeaderHint(reply.Body) is { } hinted && !string.Equals(hinted, reply.Endpoint, StringComparison.OrdinalIgnoreCase))
            {
                _view.LearnLeader(hinted);
            }
            return Attempt.Retry(new RaftKvNoLeaderException($"{call.Description}: {message}", 503, message, reply.Endpoint), retryAfter);
        }
        if (message.StartsWith("busy", StringComparison.Ordinal) || message.StartsWith("not ready", StringComparison.Ordinal)
            || call.Kind != CallKind.Write)
        {
            return Attempt.Retry(new RaftKvUnavailableException($"{call.Description}: {message}", 503, message, reply.Endpoint), retryAfter);
        }
        _view.MarkFailed(reply.Endpoint);
        return Attempt.Fail(Indeterminate(call, reply.Endpoint, 503, message, null));
    }

    /// <summary>No HTTP answer. Safe to retry when the request certainly never left; else only reads are.</summary>
    private Attempt TransportFailure(Call call, string endpoint, SentTrackingContent? content, HttpRequestException e)
    {
        _view.MarkFailed(endpoint);
        var neverSent = e.HttpRequestError is HttpRequestError.ConnectionError or HttpRequestError.NameResolutionError
            && content?.Started != true;
        var detail = Describe(e);
        if (neverSent || call.Kind != CallKind.Write)
        {
            return Attempt.Retry(new RaftKvUnavailableException($"{call.Description}: {endpoint}: {detail}", null, null, endpoint, e));
        }
        return Attempt.Fail(Indeterminate(call, endpoint, null, detail, e));
    }

    /// <summary>The call's deadline or the attempt's limit passed while waiting for an answer.</summary>
    private Attempt TimedOut(Call call, string endpoint, SentTrackingContent? content, bool callDeadline, TimeSpan limit, Exception e)
    {
        var what = callDeadline ? $"no answer within the call's {limit.TotalSeconds:0.###}s timeout" : $"no answer within the {_options.AttemptTimeout?.TotalSeconds:0.###}s attempt timeout";
        if (!callDeadline)
        {
            _view.MarkFailed(endpoint);
        }
        if (call.Kind == CallKind.Write && content?.Started == true)
        {
            return Attempt.Fail(Indeterminate(call, endpoint, null, what, e));
        }
        var failure = call.Kind == CallKind.Write
            ? new RaftKvUnavailableException($"{call.Description}: {endpoint}: could not connect: {what}; the write was not sent", null, null, endpoint, e)
            : (RaftKvException)new RaftKvTimeoutException($"{call.Description}: {endpoint}: {what}", null, null, endpoint, e);
        return callDeadline ? Attempt.Fail(failure) : Attempt.Retry(failure);
    }

    private static RaftKvIndeterminateException Indeterminate(Call call, string endpoint, int? status, string? detail, Exception? inner) =>
        new($"{call.Description}: the write may or may not have been applied ({(status is { } s ? s + ": " : "")}{detail}; at {endpoint})",
            status, detail, endpoint, inner);

    /// <summary>The exception for a final non-success answer.</summary>
    private static RaftKvException Terminal(Call call, Reply reply)
    {
        var message = reply.ServerMessage ?? $"HTTP {reply.Status}";
        return reply.Status switch
        {
            404 => new RaftKvNotFoundException(message, 404, reply.ServerMessage, reply.Endpoint),
            400 or 413 => new RaftKvBadRequestException(message, reply.Status, reply.ServerMessage, reply.Endpoint),
            _ => new RaftKvException(message, reply.Status, reply.ServerMessage, reply.Endpoint),
        };
    }

    /// <summary>The same failure, saying the client has stopped trying.</summary>
    private static RaftKvException GaveUp(RaftKvException last, string how)
    {
        var message = $"{last.Message} (gave up {how})";
        return last switch
        {
            RaftKvNoLeaderException => new RaftKvNoLeaderException(message, last.StatusCode, last.ServerMessage, last.Endpoint, last),
            RaftKvTimeoutException => new RaftKvTimeoutException(message, last.StatusCode, last.ServerMessage, last.Endpoint, last),
            RaftKvUnavailableException => new RaftKvUnavailableException(message, last.StatusCode, last.ServerMessage, last.Endpoint, last),
            _ => new RaftKvException(message, last.StatusCode, last.ServerMessage, last.Endpoint, last),
        };
    }

    private static string? ErrorText(string body, HttpResponseMessage response)
    {
        if (body.Length > 0 && body[0] == '{')
        {
            try
            {
                if (JsonSerializer.Deserialize(body, ClientJsonContext.Default.ErrorBody) is { Error: { } error })
                {
                    return error;
                }
            }
            catch (JsonException)
            {
            }
        }
        return body.Length > 0 ? body.Trim() : $"HTTP {(int)response.StatusCode} {response.ReasonPhrase}";
    }

    private static string? LeaderHint(string body)
    {
        try
        {
            return JsonSerializer.Deserialize(body, ClientJsonContext.Default.ErrorBody)?.Leader is { Length: > 0 } leader ? leader : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    private static string Describe(HttpRequestException e)
    {
        for (Exception? inner = e; inner is not null; inner = inner.InnerException)
        {
            if (inner is SocketException socket)
            {
                return socket.SocketErrorCode switch
                {
                    SocketError.ConnectionRefused => "connection refused",
                    SocketError.ConnectionReset => "connection reset",
                    _ => socket.Message,
                };
            }
        }
        return e.HttpRequestError switch
        {
            HttpRequestError.ResponseEnded => "connection closed before the answer",
            _ => (e.InnerException ?? e).Message,
        };
    }

    private static string Elapsed(long started) => $"{(Environment.TickCount64 - started) / 1000.0:0.0}s";
}
