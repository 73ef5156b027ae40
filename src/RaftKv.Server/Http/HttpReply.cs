using System.Buffers;
using System.Text.Encodings.Web;
using System.Text.Json;
using Microsoft.Net.Http.Headers;

namespace RaftKv.Server.Http;

/// <summary>
/// A response decided but not yet written. Handlers return one so the leader-routing loop can discard it and retry, or
/// forward instead, without having touched the real response.
/// </summary>
internal sealed class HttpReply
{
    /// <summary>Output JSON as written, non-ASCII kept readable: these are API bodies, never embedded in HTML.</summary>
    internal static readonly JsonWriterOptions WriterOptions = new() { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    private static readonly byte[] EmptyObjectBytes = "{}"u8.ToArray();

    private HttpReply(int status, ReadOnlyMemory<byte> body, string? contentType)
    {
        Status = status;
        Body = body;
        ContentType = contentType;
    }

    /// <summary>HTTP status.</summary>
    public int Status { get; }

    /// <summary>Body bytes (may be empty).</summary>
    public ReadOnlyMemory<byte> Body { get; }

    /// <summary>Content-Type, or null for no body.</summary>
    public string? ContentType { get; }

    /// <summary>Extra headers.</summary>
    public List<KeyValuePair<string, string>>? Headers { get; private set; }

    /// <summary>200 <c>{}</c>.</summary>
    public static HttpReply EmptyObject() => new(StatusCodes.Status200OK, EmptyObjectBytes, "application/json");

    /// <summary>A JSON body produced by <paramref name="write"/>.</summary>
    public static HttpReply Json(int status, Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            write(writer);
        }
        return new HttpReply(status, buffer.WrittenMemory, "application/json");
    }

    /// <summary>A JSON body with a state argument, so hot paths need no closure.</summary>
    public static HttpReply Json<TState>(int status, TState state, Action<Utf8JsonWriter, TState> write)
    {
        var buffer = new ArrayBufferWriter<byte>(256);
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            write(writer, state);
        }
        return new HttpReply(status, buffer.WrittenMemory, "application/json");
    }

    /// <summary>A plain-text body (raftd's raw values).</summary>
    public static HttpReply Text(int status, string text) =>
        new(status, System.Text.Encoding.UTF8.GetBytes(text), "text/plain; charset=utf-8");

    /// <summary>A status with no body.</summary>
    public static HttpReply NoBody(int status) => new(status, ReadOnlyMemory<byte>.Empty, null);

    /// <summary>The error shape every failure uses: <c>{"error": "...", ...extra}</c>.</summary>
    public static HttpReply Error(int status, string message, Action<Utf8JsonWriter>? extra = null) =>
        Json(status, w =>
        {
            w.WriteStartObject();
            w.WriteString("error"u8, message);
            extra?.Invoke(w);
            w.WriteEndObject();
        });

    /// <summary>Adds a header.</summary>
    public HttpReply WithHeader(string name, string value)
    {
        (Headers ??= []).Add(new(name, value));
        return this;
    }

    /// <summary>Adds Retry-After: what every 503 carries, so clients back off instead of hammering.</summary>
    public HttpReply WithRetryAfter(int seconds) => WithHeader(HeaderNames.RetryAfter, seconds.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Writes status, headers and body.</summary>
    public Task WriteAsync(HttpResponse response)
    {
        response.StatusCode = Status;
        if (Headers is not null)
        {
            foreach (var (name, value) in Headers)
            {
                response.Headers.Append(name, value);
            }
        }
        if (ContentType is null)
        {
            response.ContentLength = 0;
            return Task.CompletedTask;
        }
        response.ContentType = ContentType;
        response.ContentLength = Body.Length;
        return response.Body.WriteAsync(Body).AsTask();
    }
}

/// <summary>A request the server refuses before asking the node (bad JSON, bad key, too large): becomes an error reply.</summary>
internal sealed class RequestException(int status, string message) : Exception(message)
{
    /// <summary>HTTP status to answer with.</summary>
    public int Status { get; } = status;
}
