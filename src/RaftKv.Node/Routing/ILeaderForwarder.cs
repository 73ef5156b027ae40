namespace RaftKv.Node.Routing;

/// <summary>
/// Carries a call a follower cannot serve to the leader and brings back the leader's answer, both encoded
/// (<see cref="Runtime.ForwardedRequest"/>, <see cref="Runtime.ForwardedResult"/>), so the leader receives the typed
/// request the follower was given, never a re-parsed copy. Which way it travels is the host's choice: the raft
/// transport for an embedded node (<see cref="TransportForwarder"/>), the leader's HTTP address under raftkvd. The
/// decision to forward, and the retry when leadership has just moved, are <see cref="LeaderRouter"/>'s.
/// </summary>
internal interface ILeaderForwarder
{
    /// <summary>
    /// Sends <paramref name="call"/> to <paramref name="leaderId"/> (at <paramref name="leaderHttpAddress"/>, when
    /// known) and returns the answer. Throws <see cref="LeaderUnreachableException"/> when the call surely never
    /// reached the leader (safe to try again), an <see cref="IOException"/> when it may have.
    /// </summary>
    Task<byte[]> ForwardAsync(string leaderId, string? leaderHttpAddress, byte[] call, CancellationToken cancellationToken);
}

/// <summary>The leader could not be reached, and nothing was sent to it: trying again (perhaps elsewhere) is safe.</summary>
internal sealed class LeaderUnreachableException(string message) : IOException(message);
