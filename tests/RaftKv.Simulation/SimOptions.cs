using RaftKv.Raft;
namespace RaftKv.Simulation;

/// <summary>The knobs of one simulated schedule, all drawn from its seed.</summary>
public sealed record SimOptions
{
    public int Nodes { get; init; } = 5;
    public int InitialVoters { get; init; } = 3;
    /// <summary>Simulated time units per core tick.</summary>
    public int TickUnits { get; init; } = 10;
    public int ElectionTicks { get; init; } = 10;
    public int HeartbeatTicks { get; init; } = 2;
    public int FaultUnits { get; init; } = 3000;
    public int LivenessUnits { get; init; } = 2500;
    public int MaxDelay { get; init; } = 20;
    public double DropRate { get; init; }
    public double DuplicateRate { get; init; }
    public double PartitionRate { get; init; }
    public double CrashRate { get; init; }
    /// <summary>Chance that a crash hits after a Ready is written (and a leader's eager messages left) and before it is durable.</summary>
    public double CrashMidReadyRate { get; init; }
    public double WriteRate { get; init; } = 0.05;
    public double ReadRate { get; init; } = 0.03;
    public double ConfigChangeRate { get; init; } = 0.002;
    public double TransferRate { get; init; } = 0.001;
    /// <summary>Applied entries between local snapshots (0: never).</summary>
    public int SnapshotEvery { get; init; } = 30;
    /// <summary>Entries kept behind a snapshot when compacting.</summary>
    public int TrailingEntries { get; init; } = 5;
    public int MaxEntriesPerMessage { get; init; } = 8;

    /// <summary>
    /// Runs the cores with <see cref="RaftKv.Raft.RaftOptions.AsyncStorageSync"/>, as raftkvd does: a Ready's writes
    /// become durable up to <see cref="MaxSyncDelay"/> time units after Advance, and a crash loses what was not.
    /// </summary>
    public bool AsyncStorageSync { get; init; }

    /// <summary>Longest time a background sync takes (async mode only).</summary>
    public int MaxSyncDelay { get; init; } = 10;

    /// <summary>
    /// Chance that a node crashes right after the Ready that grants a vote: the window in which a vote that was sent
    /// but not made durable would be forgotten, letting the node vote again in the same term.
    /// </summary>
    public double CrashAfterVoteRate { get; init; }

    /// <summary>Chance that a crashed node is back within a few time units (else 50 to 450), before its peers' messages have all arrived.</summary>
    public double QuickRestartRate { get; init; }

    /// <summary>Chance that a message takes far longer than <see cref="MaxDelay"/>, so it reaches a node that crashed and restarted meanwhile.</summary>
    public double SlowMessageRate { get; init; }

    /// <summary>
    /// Runs the cores with <see cref="RaftKv.Raft.RaftOptions.SnapshotOutcomesReported"/>, as raftkvd does: the
    /// network tells the sender whether each InstallSnapshot arrived (as the transport reports a transfer's outcome),
    /// and a follower waits in the Snapshot state for that report instead of timing out.
    /// </summary>
    public bool ReportSnapshots { get; init; }

    /// <summary>
    /// Chance per time unit that a node loses its storage (a wiped data directory): it crashes and comes back empty as a
    /// new incarnation, then rejoins as raftkvd does. 0 (never) in <see cref="ForSeed"/>; see <see cref="ForWipeSeed"/>.
    /// </summary>
    public double WipeRate { get; init; }

    /// <summary>
    /// Whether the network tells the receiver which incarnation sent each message, as raftkvd's transport does from its
    /// handshake. Off, the cores cannot tell a node that lost its data from the member it was: the fault the
    /// incarnation checks exist for, which the wipe schedules must then find (a test shows they do).
    /// </summary>
    public bool StampIncarnations { get; init; } = true;

    /// <summary>Chance that a flush fails (the node stops, as raftkvd does, and restarts with what was durable).</summary>
    public double SyncFailureRate { get; init; }

    /// <summary>
    /// Chance that a crash with background syncs in flight keeps part of what they were flushing (a torn write: the
    /// log as one of them began) instead of only what the last completed sync covered.
    /// </summary>
    public double TornCrashRate { get; init; }

    /// <summary>Chance that writing a local snapshot fails (automatic snapshots then pause).</summary>
    public double SnapshotWriteFailureRate { get; init; }

    /// <summary>Longest time writing a local snapshot takes.</summary>
    public int MaxSnapshotWriteDelay { get; init; }

    /// <summary>A varied schedule: fault rates and sizes differ from seed to seed so that many regimes are covered.</summary>
    public static SimOptions ForSeed(int seed)
    {
        var r = new Random(unchecked(seed * 7919 + 17));
        var nodes = r.Next(3, 6);
        return new SimOptions
        {
            Nodes = nodes,
            InitialVoters = r.Next(1, nodes + 1),
            MaxDelay = r.Next(2, 40),
            DropRate = r.NextDouble() < 0.2 ? 0 : r.NextDouble() * 0.15,
            DuplicateRate = r.NextDouble() * 0.05,
            PartitionRate = r.NextDouble() * 0.004,
            CrashRate = r.NextDouble() * 0.002,
            CrashMidReadyRate = r.NextDouble() * 0.2,
            WriteRate = 0.01 + r.NextDouble() * 0.1,
            ReadRate = r.NextDouble() * 0.05,
            ConfigChangeRate = r.NextDouble() * 0.004,
            TransferRate = r.NextDouble() * 0.002,
            SnapshotEvery = r.NextDouble() < 0.2 ? 0 : r.Next(5, 60),
            TrailingEntries = r.Next(0, 10),
            MaxEntriesPerMessage = r.Next(1, 16),
            AsyncStorageSync = r.NextDouble() < 0.5,
            MaxSyncDelay = r.Next(0, 30),
            // Drawn after the others so the fields above keep their values for every seed.
            CrashAfterVoteRate = r.NextDouble() < 0.3 ? r.NextDouble() * 0.5 : 0,
            QuickRestartRate = r.NextDouble() * 0.5,
            SlowMessageRate = r.NextDouble() < 0.5 ? r.NextDouble() * 0.05 : 0,
            ReportSnapshots = r.NextDouble() < 0.5,
            SyncFailureRate = r.NextDouble() < 0.3 ? r.NextDouble() * 0.002 : 0,
            TornCrashRate = r.NextDouble(),
            SnapshotWriteFailureRate = r.NextDouble() < 0.3 ? r.NextDouble() * 0.3 : 0,
            MaxSnapshotWriteDelay = r.Next(0, 40),
        };
    }

    /// <summary>
    /// <see cref="ForSeed"/>'s schedule with wipes on, and at least three founding voters, so that losing one voter's
    /// data leaves a majority that still holds every committed entry (drawn from a generator of its own, so the
    /// fields <see cref="ForSeed"/> draws keep their values).
    /// </summary>
    public static SimOptions ForWipeSeed(int seed)
    {
        var o = ForSeed(seed);
        var r = new Random(unchecked(seed * 104729 + 71));
        return o with
        {
            InitialVoters = Math.Max(o.InitialVoters, Math.Min(3, o.Nodes)),
            WipeRate = 0.0005 + r.NextDouble() * 0.003,
            // Wipes are injected only where a leader is found; make sure the schedule has crashes and partitions too.
            CrashRate = Math.Max(o.CrashRate, 0.0005),
            PartitionRate = Math.Max(o.PartitionRate, 0.001),
        };
    }
}
