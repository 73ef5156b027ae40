namespace RaftKv.Node;

/// <summary>How fresh a read must be (the same choices rqlite offers).</summary>
public enum ReadLevel
{
    /// <summary>This node's state, whatever its role: fastest, may be stale.</summary>
    None,

    /// <summary>The leader's state, without checking it still leads: stale only in the moment after a leadership change.</summary>
    Weak,

    /// <summary>ReadIndex: the leader confirms with a quorum that it still leads, then serves its state. Never stale.</summary>
    Linearizable,

    /// <summary>Through the log, like a write: never stale, slowest.</summary>
    Strong,
}
