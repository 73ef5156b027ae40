using RaftKv.Raft;

namespace RaftKv.Node.StateMachine;

/// <summary>
/// What the raft loop replicates into: committed entries applied strictly in log order, reads, a snapshot of a
/// consistent point-in-time view, and restore. Chosen when a node starts; the in-memory map is the one engine today.
/// </summary>
internal interface IStateMachine
{
    /// <summary>Index of the last entry applied (or of the snapshot restored).</summary>
    ulong AppliedIndex { get; }

    /// <summary>How many keys are held (the snapshot policy weighs a snapshot's cost by it).</summary>
    int Count { get; }

    /// <summary>Applies one committed entry; one without a command (a no-op, a configuration) only moves the applied index.</summary>
    void Apply(in Entry entry);

    /// <summary>The value of <paramref name="key"/> as of <see cref="AppliedIndex"/>; safe on any thread.</summary>
    string? Get(string key);

    /// <summary>A point-in-time view, cheap to take on the raft loop, written out later on any thread while applies go on.</summary>
    IStateSnapshot TakeSnapshot();

    /// <summary>Replaces the whole state with a snapshot's content, taken at <paramref name="index"/>.</summary>
    void Restore(Stream input, ulong index);
}

/// <summary>A point-in-time view of a state machine, taken by <see cref="IStateMachine.TakeSnapshot"/>.</summary>
internal interface IStateSnapshot
{
    /// <summary>Writes the view in the form <see cref="IStateMachine.Restore"/> reads.</summary>
    void WriteTo(Stream output);
}
