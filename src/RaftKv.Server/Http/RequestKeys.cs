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
        if (key.Contains('\0'))
        {
            // No URL may carry it (Kestrel refuses %00), so such a key could be written but never read or deleted.
            throw new RequestException(StatusCodes.Status400BadRequest, "key must not contain the NUL character (U+0000)");
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
        return Decode(path[1..]);
    }

    /// <summary>
    /// Percent-decodes strictly: every '%' starts two hex digits and the bytes are UTF-8. Uri.UnescapeDataString leaves
    /// a bad sequence as it is, which would make "/key/%ff" and "/key/%25ff" the same key.
    /// </summary>
    private static string Decode(ReadOnlySpan<char> encoded)
    {
        if (!encoded.Contains('%'))
        {
            return encoded.ToString();
        }
        var bytes = new byte[Encoding.UTF8.GetMaxByteCount(encoded.Length)];
        var length = 0;
        var i = 0;
        while (i < encoded.Length)
        {
            if (encoded[i] != '%')
            {
                var run = encoded[i..].IndexOf('%');
                if (run < 0) run = encoded.Length - i;
                length += Encoding.UTF8.GetBytes(encoded.Slice(i, run), bytes.AsSpan(length));
                i += run;
                continue;
            }
            if (i + 2 >= encoded.Length || !char.IsAsciiHexDigit(encoded[i + 1]) || !char.IsAsciiHexDigit(encoded[i + 2]))
            {
                throw new RequestException(StatusCodes.Status400BadRequest, "malformed percent-encoding in the key: '%' must be followed by two hex digits (%25 for '%' itself)");
            }
            bytes[length++] = (byte)((HexValue(encoded[i + 1]) << 4) | HexValue(encoded[i + 2]));
            i += 3;
        }
        try
        {
            return StrictUtf8.GetString(bytes, 0, length);
        }
        catch (DecoderFallbackException)
        {
            throw new RequestException(StatusCodes.Status400BadRequest, "the key's percent-encoded bytes are not UTF-8");
        }
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private static int HexValue(char c) => c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

    private static bool StartsWithSegment(ReadOnlySpan<char> path, string segment) =>
        path.Length > segment.Length
        && path[0] == '/'
        && path.Slice(1, segment.Length).Equals(segment, StringComparison.OrdinalIgnoreCase)
        && (path.Length == segment.Length + 1 || path[segment.Length + 1] == '/');
}
