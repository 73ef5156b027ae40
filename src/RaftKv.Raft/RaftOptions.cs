namespace RaftKv.Raft;

/// <summary>Settings of one core. Times are in ticks: the runtime decides how long a tick is.</summary>
public sealed class RaftOptions
{
    /// <summary>This server's id.</summary>
    public required string Id { get; init; }

    /// <summary>
    /// Base election timeout T: a follower that hears no leader for a random number of ticks in [T, 2T) campaigns,
    /// and a leader that has not heard from a quorum within T ticks steps down (check-quorum).
    /// </summary>
    public int ElectionTicks { get; init; } = 10;

    /// <summary>Ticks between a leader's heartbeats; must be well below <see cref="ElectionTicks"/>.</summary>
    public int HeartbeatTicks { get; init; } = 1;

    /// <summary>Pre-vote (thesis §9.6): a node asks whether it could win before raising its term, so a node that was cut off cannot depose a healthy leader on its return.</summary>
    public bool PreVote { get; init; } = true;

    /// <summary>Check-quorum: a leader that has not heard from a quorum within an election timeout steps down, and followers that hear from a leader ignore vote requests (leader lease).</summary>
    public bool CheckQuorum { get; init; } = true;

    /// <summary>Byte budget of the entries in one Append message (one entry is always sent, however large).</summary>
    public long MaxSizePerMessage { get; init; } = 1 << 20;

    /// <summary>Append messages that may be in flight to one follower before the leader waits for answers.</summary>
    public int MaxInflightMessages { get; init; } = 256;

    /// <summary>Bytes of entries that may be in flight to one follower (0: no byte limit).</summary>
    public long MaxInflightBytes { get; init; } = 64L << 20;

    /// <summary>Bytes of proposals a leader holds uncommitted before it refuses new ones (0: no limit).</summary>
    public long MaxUncommittedBytes { get; init; } = 256L << 20;

    /// <summary>Byte budget of the committed entries handed out in one Ready (at least one is always handed out).</summary>
    public long MaxCommittedBytesPerReady { get; init; } = 64L << 20;

    /// <summary>
    /// Lets the runtime call <see cref="RaftCore.Advance"/> once a Ready's writes are issued, before they are durable,
    /// and report durability later with <see cref="RaftCore.ReportDurable"/> (a sync running in the background while
    /// the core keeps stepping). The leader then counts its own entries toward a quorum only up to the index reported
    /// durable. The runtime must still hold a Ready's <see cref="Ready.Messages"/> until that Ready is durable, and must
    /// sync before Advance any Ready that changes the term or vote or installs a snapshot (the core sends eagerly in a
    /// term only once Advance has acknowledged its hard state). Off: Advance means durable, as in etcd's default.
    /// </summary>
    public bool AsyncStorageSync { get; init; }

    /// <summary>
    /// The runtime reports the outcome of every snapshot it sends (<see cref="RaftCore.ReportSnapshot"/>): a follower
    /// in the Snapshot state then waits for that report however long the transfer takes. Off: an InstallSnapshot may
    /// be lost unreported (a simulated network), so one unanswered for an election timeout is sent again.
    /// </summary>
    public bool SnapshotOutcomesReported { get; init; }

    /// <summary>The index the state machine already reflects when the core starts (default: the storage's snapshot index).</summary>
    public ulong? Applied { get; init; }

    /// <summary>
    /// This server's incarnation (see <see cref="Member.Incarnation"/>): drawn when its storage was created. A
    /// configuration that names this id with another incarnation names the server's previous life, so this one does
    /// not campaign as that voter. 0 turns the check off (tests that do not model lost storage).
    /// </summary>
    public ulong Incarnation { get; init; }

    /// <summary>Seeded randomness for election timeouts. Inject a seeded instance to make a run reproducible.</summary>
    public Random Random { get; init; } = new();

    /// <summary>
    /// Receives the core's decisions as they happen (elections, step-downs, refusals, term changes, transfers), for
    /// debug logs and tests; called on the thread that drives the core, so it must be quick. Null (the default): no trace.
    /// </summary>
    public Action<RaftTraceEvent>? Trace { get; init; }

    internal void Validate()
    {
        if (string.IsNullOrEmpty(Id)) throw new ArgumentException("Id must not be empty");
        if (HeartbeatTicks <= 0) throw new ArgumentException("HeartbeatTicks must be positive");
        if (ElectionTicks <= HeartbeatTicks) throw new ArgumentException("ElectionTicks must be greater than HeartbeatTicks");
        if (MaxInflightMessages <= 0) throw new ArgumentException("MaxInflightMessages must be positive");
        if (MaxSizePerMessage <= 0) throw new ArgumentException("MaxSizePerMessage must be positive");
    }
}
