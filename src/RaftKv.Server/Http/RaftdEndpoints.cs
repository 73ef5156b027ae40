using System.Text;
using RaftKv.Node;

namespace RaftKv.Server.Http;

/// <summary>
/// goraft/raftd's raw-value API: <c>POST /db/{key}</c> with the value as the body, <c>GET /db/{key}</c> answering the raw
/// value as text/plain. <c>DELETE /db/{key}</c> is added for symmetry. Errors are JSON like everywhere else.
/// </summary>
internal static class RaftdEndpoints
{
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>Maps the endpoints.</summary>
    public static void Map(IEndpointRouteBuilder routes, ServerContext server)
    {
        routes.MapPost("/db/{**key}", context => SetAsync(context, server));
        routes.MapPut("/db/{**key}", context => SetAsync(context, server));
        routes.MapGet("/db/{**key}", context => GetAsync(context, server));
        routes.MapDelete("/db/{**key}", context => DeleteAsync(context, server));
    }

    private static async Task SetAsync(HttpContext context, ServerContext server)
    {
        using var call = new NodeCall(context, server);
        var key = RequestKeys.FromPath(context, "db", server.Options);
        var body = await call.ReadBodyAsync();
        string value;
        try
        {
            value = StrictUtf8.GetString(body);
        }
        catch (DecoderFallbackException)
        {
            throw new RequestException(StatusCodes.Status400BadRequest, "value must be UTF-8 text");
        }
        KeyValuePair<string, string>[] pairs = [new(key, value)];
        await call.RunAsync(Operation.Write, async (node, token) =>
            HraftdEndpoints.Indexed(HttpReply.NoBody(StatusCodes.Status200OK), await node.SetAsync(pairs, token)));
    }

    private static async Task GetAsync(HttpContext context, ServerContext server)
    {
        using var call = new NodeCall(context, server);
        var key = RequestKeys.FromPath(context, "db", server.Options);
        var level = ReadLevels.FromQuery(context.Request);
        await call.RunAsync(Operation.Read, async (node, token) =>
        {
            var value = await node.GetAsync(key, level, token);
            return value is null
                ? HttpReply.Error(StatusCodes.Status404NotFound, "key not found: " + key)
                : HttpReply.Text(StatusCodes.Status200OK, value);
        }, needsLeader: ReadLevels.NeedLeader(level));
    }

    private static async Task DeleteAsync(HttpContext context, ServerContext server)
    {
        using var call = new NodeCall(context, server);
        var key = RequestKeys.FromPath(context, "db", server.Options);
        await call.RunAsync(Operation.Write, async (node, token) =>
            HraftdEndpoints.Indexed(HttpReply.NoBody(StatusCodes.Status200OK), await node.DeleteAsync(key, token)));
    }
}
