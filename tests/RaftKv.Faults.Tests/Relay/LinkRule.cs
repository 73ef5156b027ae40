namespace RaftKv.Faults.Tests.Relay;

/// <summary>What the relay does with the raft connections one node dials to another.</summary>
public enum LinkRule
{
    /// <summary>Forward every byte, both ways.</summary>
    Pass,

    /// <summary>
    /// A black hole: keep reading and discard, so the sender sees a healthy connection that delivers nothing. A
    /// connection that lost bytes this way is closed when the link heals: its framing is broken mid-message.
    /// </summary>
    Drop,

    /// <summary>Close the link's connections and every new one at once (connection reset).</summary>
    Cut,
}
