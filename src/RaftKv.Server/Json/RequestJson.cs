using System.Text.Json;
using RaftKv.Raft;
using RaftKv.Server.Http;

namespace RaftKv.Server.Json;

/// <summary>
/// Request bodies, read with <see cref="Utf8JsonReader"/> and <see cref="JsonDocument"/>: no reflection, exact error
/// messages (which key had a non-string value), and nothing to trim.
/// </summary>
internal static class RequestJson
{
    private static readonly JsonReaderOptions ReaderOptions = new() { CommentHandling = JsonCommentHandling.Disallow, MaxDepth = 8 };

    /// <summary>
    /// hraftd's <c>{"k":"v", ...}</c>: one object, string values only, at least one pair. Pairs keep their order;
    /// a repeated key is set twice in the same entry, so the last value wins, as in any JSON object reader.
    /// </summary>
    public static List<KeyValuePair<string, string>> ReadPairs(ReadOnlySpan<byte> body, ServerOptions options)
    {
        var pairs = new List<KeyValuePair<string, string>>();
        var reader = new Utf8JsonReader(body, isFinalBlock: true, new JsonReaderState(ReaderOptions));
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
            {
                throw BadRequest("body must be a JSON object of string keys to string values, e.g. {\"foo\":\"bar\"}");
            }
            while (reader.Read() && reader.TokenType != JsonTokenType.EndObject)
            {
                var key = reader.GetString()!;
                RequestKeys.Validate(key, options);
                reader.Read();
                if (reader.TokenType != JsonTokenType.String)
                {
                    throw BadRequest($"value of \"{key}\" must be a string, not {Describe(reader.TokenType)}");
                }
                pairs.Add(new(key, reader.GetString()!));
            }
            // Anything after the object (a second value, garbage) makes Read throw: one object per request.
            if (reader.Read())
            {
                throw BadRequest("body must be a single JSON object");
            }
        }
        catch (JsonException e)
        {
            throw BadRequest($"malformed JSON: {e.Message}");
        }
        catch (InvalidOperationException)
        {
            // GetString's answer to bytes that are not UTF-8, or a \uD800 escape with no partner.
            throw BadRequest(InvalidText);
        }
        if (pairs.Count == 0)
        {
            throw BadRequest("body must contain at least one key, e.g. {\"foo\":\"bar\"}");
        }
        return pairs;
    }

    /// <summary>
    /// hraftd's <c>{"id", "addr", "http_addr"?, "voter"?}</c>, plus what a joining raftkvd says of itself:
    /// <c>"incarnation"</c> (16 hex digits) and <c>"cluster_id"</c> (the cluster it already belongs to, if any).
    /// </summary>
    public static Node.JoinRequest ReadJoin(ReadOnlyMemory<byte> body)
    {
        using var document = ParseObject(body, required: true)!;
        var root = document.RootElement;
        var addr = GetString(root, "addr");
        if (string.IsNullOrWhiteSpace(addr))
        {
            throw BadRequest("\"addr\" (the joining node's raft address) is required");
        }
        var id = GetString(root, "id");
        ulong incarnation = 0;
        if (GetString(root, "incarnation") is { } text && !Incarnations.TryParse(text, out incarnation))
        {
            throw BadRequest($"\"incarnation\" must be 1 to 16 hex digits, not \"{text}\"");
        }
        return new Node.JoinRequest(
            string.IsNullOrWhiteSpace(id) ? addr : id,
            addr,
            GetString(root, "http_addr") ?? "",
            GetBool(root, "voter") ?? true,
            incarnation,
            GetString(root, "cluster_id") ?? "");
    }

    /// <summary>A body's optional <c>"id"</c> (remove requires it, transfer does not); falls back to <c>?id=</c>.</summary>
    public static string? ReadId(ReadOnlyMemory<byte> body, HttpRequest request)
    {
        string? id = null;
        using (var document = ParseObject(body, required: false))
        {
            if (document is not null)
            {
                id = GetString(document.RootElement, "id");
            }
        }
        if (string.IsNullOrEmpty(id) && request.Query.TryGetValue("id", out var fromQuery))
        {
            id = fromQuery[0];
        }
        return string.IsNullOrEmpty(id) ? null : id;
    }

    private static JsonDocument? ParseObject(ReadOnlyMemory<byte> body, bool required)
    {
        if (body.Span.Trim(" \t\r\n"u8).IsEmpty)
        {
            return required ? throw BadRequest("a JSON object body is required") : null;
        }
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 8 });
        }
        catch (JsonException e)
        {
            throw BadRequest($"malformed JSON: {e.Message}");
        }
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            document.Dispose();
            throw BadRequest("body must be a JSON object");
        }
        return document;
    }

    private static string? GetString(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        if (value.ValueKind != JsonValueKind.String)
        {
            throw BadRequest($"\"{name}\" must be a string, not {value.ValueKind.ToString().ToLowerInvariant()}");
        }
        try
        {
            return value.GetString();
        }
        catch (InvalidOperationException)
        {
            throw BadRequest(InvalidText);
        }
    }

    private static bool? GetBool(JsonElement root, string name)
    {
        if (!root.TryGetProperty(name, out var value) || value.ValueKind == JsonValueKind.Null)
        {
            return null;
        }
        return value.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw BadRequest($"\"{name}\" must be true or false"),
        };
    }

    private static string Describe(JsonTokenType token) => token switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => token.ToString(),
    };

    private const string InvalidText = "malformed JSON: strings must be valid UTF-8, with no unpaired \\uD800-\\uDFFF escape";

    private static RequestException BadRequest(string message) => new(StatusCodes.Status400BadRequest, message);
}
