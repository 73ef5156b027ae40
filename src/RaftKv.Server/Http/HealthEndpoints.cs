using RaftKv.Node;
using RaftKv.Server.Json;

namespace RaftKv.Server.Http;

/// <summary>
/// Probes for orchestrators. <c>/livez</c>: the process serves HTTP and its node has not failed (never asks the node,
/// so a slow node is not restarted for being slow; a node whose raft loop died answers 503 until raftkvd exits).
/// <c>/readyz</c>: the node is a member, knows a leader, and has applied at least what the leader had
/// committed when the node started (and all it knows committed), so reads at any level work.
/// </summary>
internal static class HealthEndpoints
{
    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder routes, ServerContext server)
    {
        routes.MapGet("/livez", context =>
        {
            var failed = server.Node.Failed;
            if (failed.IsCompletedSuccessfully)
            {
                // raftkvd exits once its node has failed; a probe that comes before the exit hears it here.
                return HttpReply.Error(StatusCodes.Status503ServiceUnavailable, $"not live: the node stopped ({failed.Result}); restart the process", w =>
                {
                    w.WriteString("status"u8, "failed");
                }).WithRetryAfter(server.Options.RetryAfterSeconds).WriteAsync(context.Response);
            }
            return HttpReply.Json(StatusCodes.Status200OK, static w =>
            {
                w.WriteStartObject();
                w.WriteString("status"u8, "ok");
                w.WriteEndObject();
            }).WriteAsync(context.Response);
        });
        routes.MapGet("/readyz", context => ReadyAsync(context, server));
    }

    private static async Task ReadyAsync(HttpContext context, ServerContext server)
    {
        using var call = new NodeCall(context, server);
        await call.RunAsync(Operation.Local, async (node, token) =>
        {
            var status = await node.GetStatusAsync(token);
            if (status.Ready)
            {
                return HttpReply.Json(StatusCodes.Status200OK, status, static (w, s) =>
                {
                    w.WriteStartObject();
                    w.WriteBoolean("ready"u8, true);
                    w.WriteString("state"u8, StatusJson.RoleName(s.Role));
                    w.WriteString("leader"u8, s.LeaderId);
                    w.WriteEndObject();
                });
            }
            var reason = "not ready: " + status.NotReadyReason;
            return HttpReply.Error(StatusCodes.Status503ServiceUnavailable, reason, w =>
            {
                w.WriteBoolean("ready"u8, false);
                w.WriteString("state"u8, StatusJson.RoleName(status.Role));
                w.WriteString("membership"u8, StatusJson.MembershipName(status.Membership));
            }).WithRetryAfter(server.Options.RetryAfterSeconds);
        });
    }
}
