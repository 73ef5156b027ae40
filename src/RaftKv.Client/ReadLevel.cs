namespace RaftKv.Client;

/// <summary>
/// How fresh a read must be; the server's <c>?level=</c> (see README, "Read consistency").
/// </summary>
public enum ReadLevel
{
    /// <summary>The answering node's own state, whatever its role. Fastest; may be stale.</summary>
    None,

    /// <summary>The leader's state without confirming it still leads. Stale only just after a leadership change.</summary>
    Weak,

    /// <summary>The default: the leader confirms its leadership with a quorum first. Never stale.</summary>
    Linearizable,

    /// <summary>The read goes through the log like a write. Never stale, and the slowest.</summary>
    Strong,
}
