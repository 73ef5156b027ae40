namespace RaftKv.Retries;

/// <summary>
/// The one back-off policy for every retry loop that waits for the cluster (the client's retries, a follower waiting
/// for a leader, a membership change waiting its turn, a joining node): exponential with "equal jitter". Before retry
/// n (from 0) it waits between half and all of min(<see cref="Longest"/>, <see cref="First"/>·2ⁿ). The fixed half
/// guarantees a pause (a cluster that is down is not hammered); the random half spreads callers that failed together
/// (all of them saw the same leader die) so they do not come back in step. A server's Retry-After is honoured, capped
/// at <see cref="Longest"/>.
/// </summary>
/// <remarks>
/// Compiled into RaftKv.Client, which depends on nothing else, and linked into RaftKv.Node (which the server uses), so
/// that all of them share this one definition.
/// </remarks>
internal sealed class Backoff(TimeSpan first, TimeSpan longest)
{
    /// <summary>The ceiling of the first pause.</summary>
    public TimeSpan First { get; } = first;

    /// <summary>The ceiling no pause exceeds, however many retries.</summary>
    public TimeSpan Longest { get; } = longest;

    /// <summary>How long to wait before retry <paramref name="retry"/> (0 for the first).</summary>
    public TimeSpan Delay(int retry, TimeSpan? retryAfter = null)
    {
        var ceiling = Math.Max(0, Math.Min(Longest.Ticks, First.Ticks << Math.Clamp(retry, 0, 30)));
        var ticks = ceiling / 2 + Random.Shared.NextInt64(ceiling / 2 + 1);
        if (retryAfter is { } hint)
        {
            ticks = Math.Max(ticks, Math.Min(hint.Ticks, Longest.Ticks));
        }
        return TimeSpan.FromTicks(ticks);
    }
}
