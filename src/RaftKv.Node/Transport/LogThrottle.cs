using System.Diagnostics;

namespace RaftKv.Node.Transport;

/// <summary>
/// Lets a repeated log line through at most once per interval and counts the ones it held back, so a peer that keeps
/// sending bad input is reported without flooding the log (or filling the disk the node needs).
/// </summary>
internal sealed class LogThrottle(TimeSpan interval)
{
    private readonly Lock _lock = new();
    private readonly long _intervalTicks = (long)(interval.TotalSeconds * Stopwatch.Frequency);
    private long _next = long.MinValue;
    private long _held;

    /// <summary>True when a line may be logged now; <paramref name="held"/> is how many were held back since the last one.</summary>
    public bool TryEnter(out long held)
    {
        var now = Stopwatch.GetTimestamp();
        lock (_lock)
        {
            if (now < _next)
            {
                _held++;
                held = 0;
                return false;
            }
            _next = now + _intervalTicks;
            held = _held;
            _held = 0;
            return true;
        }
    }
}
