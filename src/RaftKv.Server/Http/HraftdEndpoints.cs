using System.Globalization;
using System.Text.Json;
using RaftKv.Node;
using RaftKv.Server.Json;

namespace RaftKv.Server.Http;

/// <summary>
/// otoolep/hraftd's API: <c>POST /key {"k":"v",...}</c>, <c>GET /key/{k}</c>, <c>DELETE /key/{k}</c>, <c>POST /join</c>,
/// plus <c>GET /status</c>. Unlike hraftd, followers forward writes to the leader and reads are linearizable by default.
/// </summary>
internal static class HraftdEndpoints
{
    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder routes, ServerContext server)
    {
        routes.MapPost("/key", context => SetAsync(context, server));
        routes.MapGet("/key/{**key}", context => GetAsync(context, server));
        routes.MapDelete("/key/{**key}", context => DeleteAsync(context, server));
        routes.MapPost("/join", context => JoinAsync(context, server));
        routes.MapGet("/status", context => StatusAsync(context, server));
    }

    /// <summary>All pairs in one atomic entry. 200 <c>{}</c>, with the entry's index in X-RaftKv-Index.</summary>
    private static async Task SetAsync(HttpContext context, ServerContext server)
    {
        using var call = new NodeCall(context, server);
        var body = await call.ReadBodyAsync();
        var pairs = RequestJson.ReadPairs(body, server.Options);
        await call.RunAsync(Operation.Write, async (node, token) =>
            Indexed(HttpReply.EmptyObject(), await node.SetAsync(pairs, token)));
    }

    /// <summary><c>{"k":"v"}</c>, or 404 <c>{"error":"key not found: k"}</c>.</summary>
    private static async Task GetAsync(HttpContext context, ServerContext server)
    {
        using var call = new NodeCall(context, server);
        var key = RequestKeys.FromPath(context, "key", server.Options);
        var level = ReadLevels.FromQuery(context.Request);
        await call.RunAsync(Operation.Read, async (node, token) =>
        {
            var value = await node.GetAsync(key, level, token);
            return value is null
                ? HttpReply.Error(StatusCodes.Status404NotFound, "key not found: " + key)
                : HttpReply.Json(StatusCodes.Status200OK, (key, value), static (w, kv) =>
                {
                    w.WriteStartObject();
                    w.WriteString(kv.key, kv.value);
                    w.WriteEndObject();
                });
        }, needsLeader: ReadLevels.NeedLeader(level));
    }

    /// <summary>200 <c>{}</c>; deleting a missing key succeeds.</summary>
    private static async Task DeleteAsync(HttpContext context, ServerContext server)
    {
        using var call = new NodeCall(context, server);
        var key = RequestKeys.FromPath(context, "key", server.Options);
        await call.RunAsync(Operation.Write, async (node, token) =>
            Indexed(HttpReply.EmptyObject(), await node.DeleteAsync(key, token)));
    }

    /// <summary><c>{"id", "addr", "http_addr"?, "voter"?}</c>: adds (or updates) a member. 200 <c>{"ok":true,"msg":"OK"}</c>.</summary>
    private static async Task JoinAsync(HttpContext context, ServerContext server)
    {
        using var call = new NodeCall(context, server);
        var body = await call.ReadBodyAsync();
        var join = RequestJson.ReadJoin(body);
        await call.RunAsync(Operation.Admin, async (node, token) =>
        {
            await node.JoinAsync(join, token);
            server.Logger.LogInformation("Node {Id} at {RaftAddress} (HTTP {HttpAddress}) joined as a {Kind}",
                join.Id, join.RaftAddress, join.HttpAddress, join.Voter ? "voter" : "non-voter");
            return Ok();
        });
    }

    /// <summary>This node's view: itself, the leader, the followers, the log (see <see cref="StatusJson.WriteStatus"/>).</summary>
    private static async Task StatusAsync(HttpContext context, ServerContext server)
    {
        using var call = new NodeCall(context, server);
        await call.RunAsync(Operation.Local, async (node, token) =>
            HttpReply.Json(StatusCodes.Status200OK, await node.GetStatusAsync(token), StatusJson.WriteStatus));
    }

    /// <summary>The fork's success body for operator actions: <c>{"ok":true,"msg":"OK"}</c>.</summary>
    internal static HttpReply Ok() => HttpReply.Json(StatusCodes.Status200OK, static (Utf8JsonWriter w) =>
    {
        w.WriteStartObject();
        w.WriteBoolean("ok"u8, true);
        w.WriteString("msg"u8, "OK");
        w.WriteEndObject();
    });

    /// <summary>Tells the client which log index its write landed at (useful to clients that want read-your-writes checks).</summary>
    internal static HttpReply Indexed(HttpReply reply, ulong index) =>
        reply.WithHeader(ServerApp.IndexHeader, index.ToString(CultureInfo.InvariantCulture));
}
