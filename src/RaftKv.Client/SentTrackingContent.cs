using System.Net;

namespace RaftKv.Client;

/// <summary>
/// A request body that records whether the HTTP stack started sending it. This is how the client tells "the write never
/// left" (a connection refused before anything was sent: safe to retry) from "the write may have reached the node"
/// (anything after the body was handed to a connection: never retried). SocketsHttpHandler may itself resend a request
/// on a new connection when a pooled one turns out dead; if the first try had started sending, the flag stays set,
/// so a later "connection refused" from that resend cannot make the write look unsent.
/// Writes without a payload (DELETE) carry an empty one of these for the same reason.
/// </summary>
internal sealed class SentTrackingContent : HttpContent
{
    private readonly byte[] _body;
    private int _started;

    public SentTrackingContent(byte[] body, string? mediaType)
    {
        _body = body;
        if (mediaType is not null)
        {
            Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(mediaType);
        }
    }

    /// <summary>True once the HTTP stack began writing the body to a connection (so the request line and headers were on their way).</summary>
    public bool Started => Volatile.Read(ref _started) != 0;

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) =>
        SerializeToStreamAsync(stream, context, CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken)
    {
        Volatile.Write(ref _started, 1);
        return stream.WriteAsync(_body, cancellationToken).AsTask();
    }

    protected override bool TryComputeLength(out long length)
    {
        length = _body.Length;
        return true;
    }
}
