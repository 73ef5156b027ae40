namespace RaftKv.Client;

/// <summary>
/// Exponential back-off with "equal jitter": before retry n the client waits between half and all of
/// min(<c>max</c>, <c>initial</c>·2ⁿ). The fixed half guarantees a pause (a cluster that is down is not hammered); the
/// random half spreads clients that failed together (all of them saw the same leader die) so they do not return in step.
/// A server's Retry-After is honoured, capped at <c>max</c>.
/// </summary>
internal sealed class Backoff(TimeSpan initial, TimeSpan max)
{
    public TimeSpan Delay(int retry, TimeSpan? retryAfter)
    {
        var ceiling = Math.Min(max.Ticks, initial.Ticks << Math.Min(retry, 30));
        var ticks = ceiling / 2 + Random.Shared.NextInt64(ceiling / 2 + 1);
        if (retryAfter is { } hint)
        {
            ticks = Math.Max(ticks, Math.Min(hint.Ticks, max.Ticks));
        }
        return TimeSpan.FromTicks(ticks);
    }
}
