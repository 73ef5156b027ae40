namespace RaftKv.Node.Routing;

/// <summary>
/// The one time limit of one request (<see cref="NodeOptions.RequestTimeout"/>): a token cancelled when it passes or
/// when the caller gives up. Started once, where the request enters the node, and handed to everything the request
/// waits for (the loop, a forwarded call, a pause between retries), so no step starts a clock of its own.
/// </summary>
internal readonly struct RequestDeadline : IDisposable
{
    private readonly CancellationTokenSource _source;
    private readonly CancellationTokenRegistration _callerGivesUp;
    private readonly CancellationToken _caller;
    private readonly TimeProvider _time;
    private readonly long _started;
    private readonly TimeSpan _timeout;

    private RequestDeadline(TimeSpan timeout, TimeProvider time, CancellationToken caller)
    {
        _time = time;
        _timeout = timeout;
        _caller = caller;
        _started = time.GetTimestamp();
        // One source for both ends, the clock and the caller: a linked source would be a second allocation per request.
        _source = new CancellationTokenSource(timeout, time);
        _callerGivesUp = caller.UnsafeRegister(static s => ((CancellationTokenSource)s!).Cancel(), _source);
    }

    /// <summary>Starts the clock: <paramref name="timeout"/> from now, or sooner if <paramref name="caller"/> is cancelled.</summary>
    public static RequestDeadline Start(TimeSpan timeout, TimeProvider time, CancellationToken caller) => new(timeout, time, caller);

    /// <summary>Cancelled at the deadline or when the caller gives up.</summary>
    public CancellationToken Token => _source.Token;

    /// <summary>True once the deadline itself has passed (not merely the caller giving up).</summary>
    public bool Passed => _source.IsCancellationRequested && !_caller.IsCancellationRequested;

    /// <summary>What is left of the request timeout.</summary>
    public TimeSpan Remaining
    {
        get
        {
            var left = _timeout - _time.GetElapsedTime(_started);
            return left > TimeSpan.Zero ? left : TimeSpan.Zero;
        }
    }

    /// <inheritdoc />
    public void Dispose()
    {
        _callerGivesUp.Dispose();
        _source.Dispose();
    }
}
