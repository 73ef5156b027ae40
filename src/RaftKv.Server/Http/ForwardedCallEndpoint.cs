using Microsoft.AspNetCore.Http.Features;
using RaftKv.Node.Routing;

namespace RaftKv.Server.Http;

/// <summary>
/// <c>POST /raft/forward</c>: where another node's routing sends a call it cannot serve (see <see cref="LeaderForwarder"/>).
/// The body is the node's encoded call and the answer its encoded result, whatever the outcome: errors travel inside
/// it, typed, so the forwarding node's caller gets the same error as if it had asked this node.
/// </summary>
internal static class ForwardedCallEndpoint
{
    /// <summary>Room for the parts of an encoded call besides the value: the key, the lengths and the other fields.</summary>
    private const long EncodingSlackBytes = 4096;

    /// <summary>Maps the endpoint.</summary>
    public static void Map(IEndpointRouteBuilder routes, ServerContext server) =>
        routes.MapPost(LeaderForwarder.Path, context => AnswerAsync(context, server));

    private static async Task AnswerAsync(HttpContext context, ServerContext server)
    {
        if (server.Node is not IRoutedNode node)
        {
            await HttpReply.Error(StatusCodes.Status404NotFound, "this node takes no forwarded calls").WriteAsync(context.Response);
            return;
        }
        // Only nodes call here, always with their binary encoding: anything else (a person trying the path with curl,
        // say) gets a JSON error it can read rather than a binary answer.
        if (!string.Equals(context.Request.ContentType, "application/octet-stream", StringComparison.OrdinalIgnoreCase))
        {
            await HttpReply.Error(StatusCodes.Status415UnsupportedMediaType,
                "POST /raft/forward is for calls between nodes (Content-Type: application/octet-stream, the nodes' binary encoding); clients use /key and the other endpoints, which forward to the leader themselves").WriteAsync(context.Response);
            return;
        }
        // A call carries one client request's body and key, which this node's limits already allow.
        var limit = server.Options.MaxBodyBytes + server.Options.MaxKeyBytes + EncodingSlackBytes;
        if (context.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } size)
        {
            size.MaxRequestBodySize = Math.Max(size.MaxRequestBodySize ?? 0, limit);
        }
        var call = await RequestBody.ReadAsync(context.Request, limit, context.RequestAborted);
        var answer = await node.AnswerForwardedAsync(call, context.RequestAborted);
        context.Response.StatusCode = StatusCodes.Status200OK;
        context.Response.ContentType = "application/octet-stream";
        context.Response.ContentLength = answer.Length;
        await context.Response.Body.WriteAsync(answer, context.RequestAborted);
    }
}
