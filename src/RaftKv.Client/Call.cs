using System.Net.Http.Headers;

namespace RaftKv.Client;

/// <summary>What a request does to the cluster: decides where it goes and what may be retried.</summary>
internal enum CallKind
{
    /// <summary>Reads nothing but state: any failure may be retried, anywhere.</summary>
    Read,

    /// <summary>Changes the log (set, delete, join, remove, transfer): retried only when it certainly did not reach the log.</summary>
    Write,

    /// <summary>Asks one node about itself (status, snapshot): repeating it is harmless.</summary>
    Local,
}

/// <summary>One API call, as sent on each attempt.</summary>
/// <param name="Method">HTTP method.</param>
/// <param name="PathAndQuery">Path and query, escaped.</param>
/// <param name="Body">Request body (JSON), or null for none.</param>
/// <param name="Kind">What it does, for the retry rules.</param>
/// <param name="NeedsLeader">Send to the leader when known (a follower would only forward it).</param>
/// <param name="Endpoint">A node it must go to (status of that node), or null for "whichever works".</param>
/// <param name="Description">What it was, for messages ("set user1").</param>
internal sealed record Call(HttpMethod Method, string PathAndQuery, byte[]? Body, CallKind Kind, bool NeedsLeader, string? Endpoint, string Description)
{
    /// <summary>Retries across endpoints are allowed (a call pinned to one node retries only there).</summary>
    public int MaxRetriesOverride { get; init; } = -1;

    /// <summary>A 404 is an answer the caller interprets (a missing key), not a failure.</summary>
    public bool AcceptNotFound { get; init; }
}

/// <summary>A final answer from a node: success, or an error that the caller turns into its result (a 404 for a missing key).</summary>
/// <param name="Status">HTTP status.</param>
/// <param name="Body">Body text.</param>
/// <param name="Endpoint">Who answered.</param>
/// <param name="Headers">Response headers.</param>
/// <param name="ServerMessage">The <c>{"error"}</c> text, when an error.</param>
internal sealed record Reply(int Status, string Body, string Endpoint, HttpResponseHeaders Headers, string? ServerMessage)
{
    public bool IsSuccess => Status is >= 200 and < 300;

    /// <summary>The log index a write landed at (<c>X-RaftKv-Index</c>), or 0 when the server did not say.</summary>
    public ulong Index =>
        Headers.TryGetValues(RaftKvClient.IndexHeader, out var values) && ulong.TryParse(values.FirstOrDefault(), out var index) ? index : 0;
}

/// <summary>The outcome of one attempt: a reply, or a failure that may or may not be retried.</summary>
internal readonly record struct Attempt(Reply? Reply, RaftKvException? Failure, bool Retryable, TimeSpan? RetryAfter)
{
    public static Attempt Answered(Reply reply) => new(reply, null, false, null);

    public static Attempt Retry(RaftKvException failure, TimeSpan? retryAfter = null) => new(null, failure, true, retryAfter);

    public static Attempt Fail(RaftKvException failure) => new(null, failure, false, null);
}
