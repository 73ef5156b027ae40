using System.Buffers;

namespace RaftKv.Server.Http;

/// <summary>Reads a request body whole, refusing it with 413 as soon as it exceeds the limit (not after buffering it all).</summary>
internal static class RequestBody
{
    /// <summary>The body bytes; throws <see cref="RequestException"/> 413 when over <paramref name="limit"/>.</summary>
    public static async ValueTask<byte[]> ReadAsync(HttpRequest request, long limit, CancellationToken cancellationToken)
    {
        // A declared length over the limit is refused before reading a byte of it.
        if (request.ContentLength is long declared && declared > limit)
        {
            throw TooLarge(limit);
        }

        var reader = request.BodyReader;
        try
        {
            while (true)
            {
                var result = await reader.ReadAsync(cancellationToken);
                var buffer = result.Buffer;
                if (buffer.Length > limit)
                {
                    reader.AdvanceTo(buffer.Start, buffer.End);
                    throw TooLarge(limit);
                }
                if (result.IsCompleted || result.IsCanceled)
                {
                    var bytes = buffer.IsEmpty ? [] : buffer.ToArray();
                    reader.AdvanceTo(buffer.End);
                    return bytes;
                }
                // Consume nothing, examine everything: the next read returns the whole body so far plus what arrived.
                reader.AdvanceTo(buffer.Start, buffer.End);
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            // Kestrel's own limit (set to the same value) tripped first: same answer.
            throw TooLarge(limit);
        }
    }

    private static RequestException TooLarge(long limit) =>
        new(StatusCodes.Status413PayloadTooLarge, $"request body too large: the limit is {limit} bytes (--max-body)");
}
