using System.Text;
using Microsoft.AspNetCore.Http.Features;

namespace RaftKv.Server.Http;

/// <summary>
/// Keys taken from URL paths (<c>/key/{k}</c>, <c>/db/{k}</c>). A key may be any non-empty string, '/' and '%' included,
/// so it is decoded exactly once from the raw request target: Kestrel's pre-decoded path leaves "%2F" encoded, which would
/// make "a%2Fb" and "a%252Fb" the same key.
/// </summary>
internal static class RequestKeys
{
    /// <summary>The key after <c>/{segment}/</c> (with or without the /hraftd prefix), validated.</summary>
    public static string FromPath(HttpContext context, string segment, ServerOptions options)
    {
        var raw = context.Features.Get<IHttpRequestFeature>()?.RawTarget;
        var key = raw is not null ? FromRawTarget(raw, segment) : null;
        key ??= context.Request.RouteValues["key"] as string ?? "";
        Validate(key, options);
        return key;
    }

    /// <summary>Throws 400 for an empty or over-long key.</summary>
    public static void Validate(string key, ServerOptions options)
    {
        if (key.Length == 0)
        {
            throw new RequestException(StatusCodes.Status400BadRequest, "key must not be empty");
        }
        if (key.Length > options.MaxKeyBytes / 3 && Encoding.UTF8.GetByteCount(key) > options.MaxKeyBytes)
        {
            throw new RequestException(StatusCodes.Status400BadRequest,
                $"key too long: {Encoding.UTF8.GetByteCount(key)} bytes, the limit is {options.MaxKeyBytes}");
        }
    }

    /// <summary>Decodes the key from a raw target such as "/hraftd/key/a%2Fb?level=none"; null when the target does not have that shape.</summary>
    internal static string? FromRawTarget(string raw, string segment)
    {
        var path = raw.AsSpan();
        var end = path.IndexOfAny('?', '#');
        if (end >= 0)
        {
            path = path[..end];
        }
        if (StartsWithSegment(path, "hraftd") && StartsWithSegment(path["/hraftd".Length..], segment))
        {
            path = path["/hraftd".Length..];
        }
        if (!StartsWithSegment(path, segment))
        {
            return null;
        }
        path = path[(segment.Length + 1)..];
        if (path.IsEmpty || path is "/")
        {
            return "";
        }
        return Uri.UnescapeDataString(path[1..].ToString());
    }

    private static bool StartsWithSegment(ReadOnlySpan<char> path, string segment) =>
        path.Length > segment.Length
        && path[0] == '/'
        && path.Slice(1, segment.Length).Equals(segment, StringComparison.OrdinalIgnoreCase)
        && (path.Length == segment.Length + 1 || path[segment.Length + 1] == '/');
}
