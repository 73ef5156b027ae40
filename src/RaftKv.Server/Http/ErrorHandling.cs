using Microsoft.Extensions.Logging;
using Microsoft.Net.Http.Headers;

namespace RaftKv.Server.Http;

/// <summary>
/// The outermost middleware: every failure leaves as JSON <c>{"error": ...}</c> with a meaningful status. Never a bare
/// 500, never a stack trace: an unexpected exception becomes 500 <c>{"error":"internal error: message"}</c> and is logged.
/// Routing's bodiless 404/405 answers get a JSON body here too (405 keeps routing's Allow header).
/// </summary>
internal static class ErrorHandling
{
    /// <summary>Runs <paramref name="next"/>, translating what escapes it.</summary>
    public static async Task InvokeAsync(HttpContext context, RequestDelegate next, ILogger logger)
    {
        try
        {
            await next(context);
            if (!context.Response.HasStarted && context.Response.ContentLength is null)
            {
                if (context.Response.StatusCode == StatusCodes.Status405MethodNotAllowed)
                {
                    var allow = context.Response.Headers[HeaderNames.Allow].ToString();
                    await HttpReply.Error(405, $"method {context.Request.Method} not allowed on {context.Request.Path}; allowed: {allow}")
                        .WriteAsync(context.Response);
                }
                else if (context.Response.StatusCode == StatusCodes.Status404NotFound && context.GetEndpoint() is null)
                {
                    await HttpReply.Error(404, $"no such endpoint: {context.Request.Method} {context.Request.PathBase}{context.Request.Path}")
                        .WriteAsync(context.Response);
                }
            }
        }
        catch (RequestException e) when (!context.Response.HasStarted)
        {
            await HttpReply.Error(e.Status, e.Message).WriteAsync(context.Response);
        }
        catch (BadHttpRequestException e) when (!context.Response.HasStarted)
        {
            // Kestrel's own protocol checks (body too large, bad chunking, request too slow).
            var message = e.StatusCode == StatusCodes.Status413PayloadTooLarge ? "request body too large (--max-body)" : e.Message;
            await HttpReply.Error(e.StatusCode, message).WriteAsync(context.Response);
        }
        catch (OperationCanceledException) when (context.RequestAborted.IsCancellationRequested)
        {
            // The client went away; nobody is left to answer.
        }
        catch (OperationCanceledException) when (!context.Response.HasStarted)
        {
            // Only the request deadline cancels besides the client: it ran out while reading the body.
            await HttpReply.Error(StatusCodes.Status408RequestTimeout, "timed out reading the request body").WriteAsync(context.Response);
        }
        catch (Exception e) when (!context.Response.HasStarted)
        {
            logger.LogError(e, "Unhandled error serving {Method} {Path}", context.Request.Method, context.Request.Path);
            context.Response.Headers.Clear();
            await HttpReply.Error(StatusCodes.Status500InternalServerError, "internal error: " + e.Message).WriteAsync(context.Response);
        }
    }
}
