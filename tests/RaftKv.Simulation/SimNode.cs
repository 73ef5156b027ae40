using RaftKv.Node.Runtime;
using RaftKv.Raft;

namespace RaftKv.Simulation;

/// <summary>A client write: set Key to a value unique to this operation.</summary>
internal sealed record WriteOp(long Id, string Key, string Value, long Start);

/// <summary>A client read: the value of Key must reflect every write acknowledged before Start (MinIndex).</summary>
internal sealed record ReadOp(long Id, string Key, long Start, ulong MinIndex);

/// <summary>
/// One simulated server. What survives a crash: its disk and its stored snapshots. While it is up, a life of the
/// node's runtime: the same <see cref="ReadyProcessor"/> raftkvd runs, over the real key-value state machine, with
/// the simulator's flusher and snapshot writer, and the client requests it is handling.
/// </summary>
internal sealed class SimNode(string id, SimDisk disk)
{
    public string Id { get; } = id;

    /// <summary>
    /// Which life of this server's storage is running: drawn when its storage is created (at founding and after each
    /// wipe), as raftkvd does; see <see cref="Member.Incarnation"/>.
    /// </summary>
    public ulong Incarnation { get; set; }

    /// <summary>How many times its storage was created (1 + wipes).</summary>
    public int Lives { get; set; } = 1;

    /// <summary>Durable: survives crashes.</summary>
    public SimDisk Disk { get; set; } = disk;

    /// <summary>Durable snapshot bytes.</summary>
    public SimSnapshotFiles Snapshots { get; set; } = new();

    // ---- one life -------------------------------------------------------------------------------------------

    public ReadyProcessor? Processor { get; set; }
    public RaftCore? Core => Processor?.Core;
    public bool Alive => Processor is not null;
    public CheckedStateMachine? State { get; set; }
    public SimSyncFlusher? Flusher { get; set; }
    public SimSnapshotFiles.Writer? SnapshotWriter { get; set; }

    /// <summary>Writes waiting for the loop to take them (held while the leader's entries flush, as raftkvd holds them).</summary>
    public Queue<(WriteOp Op, QueuedProposal Proposal)> QueuedWrites { get; } = new();

    /// <summary>Writes handed to the processor, until their completion says how they ended.</summary>
    public List<(WriteOp Op, Task<ulong> Outcome)> Writes { get; } = [];

    public List<(ReadOp Op, Task<string?> Outcome)> Reads { get; } = [];

    /// <summary>Set when this Ready sent a vote and the schedule crashes the node right after.</summary>
    public bool CrashAfterReady { get; set; }

    // Monotonicity watermarks within one life.
    public ulong LastCommitSeen { get; set; }
    public ulong LastAppliedSeen { get; set; }
    public int TickOffset { get; set; }
}
