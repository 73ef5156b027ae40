using System.Text.Json;
using RaftKv.Node;

namespace RaftKv.Server.Http;

/// <summary>What kind of work a request asks for: decides whether it can be redirected and how a timeout is worded.</summary>
internal enum Operation
{
    /// <summary>A read; above level none it needs the leader.</summary>
    Read,

    /// <summary>A change to the data (set, delete): leader only, and a timeout leaves its fate unknown.</summary>
    Write,

    /// <summary>A membership or leadership change (join, remove, transfer): leader only; a timeout leaves its fate unknown.</summary>
    Admin,

    /// <summary>Served by this node whatever its role (status, stats, snapshot): never forwarded.</summary>
    Local,
}

/// <summary>
/// Maps every <see cref="NodeException"/> kind to a status and a JSON body that says what happened and what to do.
/// <list type="table">
/// <item><term>NotLeader, NoLeader, Busy, Unavailable</term><description>503 + Retry-After (transient: retry)</description></item>
/// <item><term>NotApplied</term><description>503 + Retry-After: the write was NOT applied (leadership changed first, or its request timed out before it was proposed), so retrying is safe;
/// 503 rather than 409 because nothing about the request is wrong and the same request will succeed later.</description></item>
/// <item><term>Timeout</term><description>504; for writes the body says the write may or may not have been applied.</description></item>
/// <item><term>BadRequest</term><description>400</description></item>
/// <item><term>NotFound</term><description>404</description></item>
/// <item><term>TooLarge</term><description>413: the write cannot be replicated and was not applied</description></item>
/// </list>
/// </summary>
internal static class ErrorMapping
{
    /// <summary>Header a node sets on a 503 it gives because it is not the leader, so a client knows retrying elsewhere is safe.</summary>
    public const string NotLeaderHeader = "X-RaftKv-Not-Leader";

    /// <summary>The reply for a node failure.</summary>
    public static HttpReply FromNodeException(NodeException e, Operation operation, ServerOptions options) => e.Kind switch
    {
        NodeErrorKind.NotLeader => HttpReply.Error(503, "not the leader", w =>
            {
                w.WriteString("detail"u8, e.Message);
                WriteLeader(w, e);
            }).WithRetryAfter(options.RetryAfterSeconds).WithHeader(NotLeaderHeader, "true"),
        NodeErrorKind.NoLeader => NoLeader(e.Message, options).WithHeader(NotLeaderHeader, "true"),
        NodeErrorKind.Timeout => Timeout(operation, e.Message),
        NodeErrorKind.NotApplied => HttpReply.Error(503,
                $"not applied: {e.Message}; it is safe to retry",
                w => WriteLeader(w, e))
            .WithRetryAfter(options.RetryAfterSeconds),
        NodeErrorKind.Busy => HttpReply.Error(503, $"busy: {e.Message}; retry shortly").WithRetryAfter(options.RetryAfterSeconds),
        NodeErrorKind.BadRequest => HttpReply.Error(400, e.Message),
        NodeErrorKind.NotFound => HttpReply.Error(404, e.Message),
        NodeErrorKind.Conflict => HttpReply.Error(409, e.Message),
        NodeErrorKind.TooLarge => HttpReply.Error(413, e.Message),
        NodeErrorKind.Unavailable => HttpReply.Error(503, $"unavailable: {e.Message}").WithRetryAfter(options.RetryAfterSeconds),
        _ => HttpReply.Error(500, $"internal error: {e.Kind}: {e.Message}"),
    };

    /// <summary>503 "no leader": nobody leads now (election, lost quorum), or the leader could not be reached in time.</summary>
    public static HttpReply NoLeader(string detail, ServerOptions options) =>
        HttpReply.Error(503, "no leader", w =>
        {
            w.WriteString("detail"u8, detail);
            w.WriteString("hint"u8, "a leader is usually elected within a few seconds; retry after Retry-After");
        }).WithRetryAfter(options.RetryAfterSeconds);

    /// <summary>504, worded for what may have happened.</summary>
    public static HttpReply Timeout(Operation operation, string detail) =>
        HttpReply.Error(504, operation is Operation.Write or Operation.Admin
            ? $"timed out ({detail}); the write may or may not have been applied: read it back before retrying if it is not idempotent"
            : $"timed out ({detail})");

    private static void WriteLeader(Utf8JsonWriter w, NodeException e)
    {
        if (e.LeaderId is not null)
        {
            w.WriteString("leader_id"u8, e.LeaderId);
        }
        if (!string.IsNullOrEmpty(e.LeaderHttpAddress))
        {
            w.WriteString("leader"u8, e.LeaderHttpAddress);
        }
    }
}
