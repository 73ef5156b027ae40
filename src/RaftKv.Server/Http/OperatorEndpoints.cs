using System.Text.Json;
using RaftKv.Node;
using RaftKv.Server.Json;

namespace RaftKv.Server.Http;

/// <summary>
/// The operator's view, after bingoohuang/hraftd: <c>GET /raft/stats</c>, <c>GET /raft/cluster</c>,
/// <c>DELETE /raft/remove {"id"}</c>; and after hashicorp's API: <c>POST /raft/transfer-leadership</c>, <c>POST /raft/snapshot</c>.
/// </summary>
internal static class OperatorEndpoints
{
    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder routes, ServerContext server)
    {
        routes.MapGet("/raft/stats", context => LocalStatusAsync(context, server, StatusJson.WriteStats));
        routes.MapGet("/raft/cluster", context => LocalStatusAsync(context, server, StatusJson.WriteCluster));
        // DELETE with a body is the fork's form; POST is accepted too because some clients cannot send a DELETE body.
        routes.MapMethods("/raft/remove", [HttpMethods.Delete, HttpMethods.Post], context => RemoveAsync(context, server));
        routes.MapPost("/raft/transfer-leadership", context => TransferAsync(context, server));
        routes.MapPost("/raft/snapshot", context => SnapshotAsync(context, server));
    }

    private static async Task LocalStatusAsync(HttpContext context, ServerContext server, Action<Utf8JsonWriter, NodeStatus> write)
    {
        using var call = new NodeCall(context, server);
        await call.RunAsync(Operation.Local, async (node, token) =>
            HttpReply.Json(StatusCodes.Status200OK, await node.GetStatusAsync(token), write));
    }

    /// <summary><c>{"id":...}</c> (or <c>?id=</c>) → <c>{"ok":true,"msg":"OK"}</c>; 404 when not a member.</summary>
    private static async Task RemoveAsync(HttpContext context, ServerContext server)
    {
        using var call = new NodeCall(context, server);
        var body = await call.ReadBodyAsync();
        var id = RequestJson.ReadId(body, context.Request)
            ?? throw new RequestException(StatusCodes.Status400BadRequest, "\"id\" (the node to remove) is required");
        await call.RunAsync(Operation.Admin, async (node, token) =>
        {
            await node.RemoveAsync(id, token);
            server.Logger.LogInformation("Node {Id} removed", id);
            return HraftdEndpoints.Ok();
        });
    }

    /// <summary>Optional <c>{"id":...}</c>: hands leadership over and waits until the target leads.</summary>
    private static async Task TransferAsync(HttpContext context, ServerContext server)
    {
        using var call = new NodeCall(context, server);
        var body = await call.ReadBodyAsync();
        var id = RequestJson.ReadId(body, context.Request);
        await call.RunAsync(Operation.Admin, async (node, token) =>
        {
            await node.TransferLeadershipAsync(id, token);
            return HraftdEndpoints.Ok();
        });
    }

    /// <summary>Snapshots this node (whatever its role: snapshots are local) → <c>{"index":N}</c>.</summary>
    private static async Task SnapshotAsync(HttpContext context, ServerContext server)
    {
        using var call = new NodeCall(context, server);
        await call.RunAsync(Operation.Local, async (node, token) =>
        {
            var index = await node.SnapshotAsync(token);
            return HttpReply.Json(StatusCodes.Status200OK, index, static (w, i) =>
            {
                w.WriteStartObject();
                w.WriteNumber("index"u8, i);
                w.WriteEndObject();
            });
        });
    }
}
