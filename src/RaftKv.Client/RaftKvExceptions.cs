namespace RaftKv.Client;

/// <summary>
/// A call failed. The base of every exception <see cref="RaftKvClient"/> throws (besides <see cref="ArgumentException"/>
/// for bad arguments and <see cref="OperationCanceledException"/> when the caller's token fires).
/// </summary>
public class RaftKvException : Exception
{
    /// <summary>Creates the exception.</summary>
    /// <param name="message">What happened, for people.</param>
    /// <param name="statusCode">The HTTP status the server answered, or null when no answer came.</param>
    /// <param name="serverMessage">The server's <c>{"error": ...}</c> text, when it sent one.</param>
    /// <param name="endpoint">The node (HTTP address) that gave the last answer or failure.</param>
    /// <param name="innerException">The underlying failure, if any.</param>
    public RaftKvException(string message, int? statusCode = null, string? serverMessage = null, string? endpoint = null, Exception? innerException = null)
        : base(message, innerException)
    {
        StatusCode = statusCode;
        ServerMessage = serverMessage;
        Endpoint = endpoint;
    }

    /// <summary>The HTTP status the server answered, or null when there was no answer (connection failed, timed out).</summary>
    public int? StatusCode { get; }

    /// <summary>The server's error message (<c>{"error": ...}</c>), or null.</summary>
    public string? ServerMessage { get; }

    /// <summary>The node (HTTP address) that gave the last answer or failure, when known.</summary>
    public string? Endpoint { get; }
}

/// <summary>404: the named node (or path) does not exist. A missing key is not an error: <see cref="RaftKvClient.GetAsync"/> returns null.</summary>
public sealed class RaftKvNotFoundException(string message, int? statusCode = null, string? serverMessage = null, string? endpoint = null)
    : RaftKvException(message, statusCode, serverMessage, endpoint);

/// <summary>400 or 413: the server refused the request as malformed (empty or over-long key, no pairs, body too large). Never retried.</summary>
public sealed class RaftKvBadRequestException(string message, int? statusCode = null, string? serverMessage = null, string? endpoint = null)
    : RaftKvException(message, statusCode, serverMessage, endpoint);

/// <summary>
/// No leader could be found before the retries or the time ran out (an election that did not finish, a lost quorum,
/// or a busy leader). Nothing was applied: the same call may be made again.
/// </summary>
public sealed class RaftKvNoLeaderException(string message, int? statusCode = null, string? serverMessage = null, string? endpoint = null, Exception? innerException = null)
    : RaftKvException(message, statusCode, serverMessage, endpoint, innerException);

/// <summary>
/// No node could be reached (every attempt failed to connect or was refused as unavailable) before the retries or the
/// time ran out. For a write, nothing was applied: every attempt was refused before it reached the log.
/// </summary>
public sealed class RaftKvUnavailableException(string message, int? statusCode = null, string? serverMessage = null, string? endpoint = null, Exception? innerException = null)
    : RaftKvException(message, statusCode, serverMessage, endpoint, innerException);

/// <summary>A read (or status/snapshot call) got no answer within its timeout. Nothing changed because of it.</summary>
public sealed class RaftKvTimeoutException(string message, int? statusCode = null, string? serverMessage = null, string? endpoint = null, Exception? innerException = null)
    : RaftKvException(message, statusCode, serverMessage, endpoint, innerException);

/// <summary>
/// The write may or may not have been applied: it reached a node (or may have), and then the answer was lost (504, a
/// connection reset after sending, a timeout, a failed forward). The client never retries such a write, because
/// repeating it could apply it twice. Read the key back to find out, or repeat the write if it is idempotent (a set of
/// fixed values is).
/// </summary>
public sealed class RaftKvIndeterminateException(string message, int? statusCode = null, string? serverMessage = null, string? endpoint = null, Exception? innerException = null)
    : RaftKvException(message, statusCode, serverMessage, endpoint, innerException);
