using System.Globalization;
using RaftKv.Node.Transport;

namespace RaftKv.Node;

/// <summary>Everything a node needs to start. The server fills it from its command line.</summary>
public sealed record NodeOptions
{
    /// <summary>This node's id (hraftd's default: the raft address).</summary>
    public required string Id { get; init; }

    /// <summary>Where to keep the log and snapshots (ignored when <see cref="InMemory"/>).</summary>
    public required string DataDirectory { get; init; }

    /// <summary>Address the raft transport listens on, host:port.</summary>
    public required string RaftBindAddress { get; init; }

    /// <summary>Raft address other nodes use to reach this one (default: the bind address).</summary>
    public string? RaftAdvertiseAddress { get; init; }

    /// <summary>
    /// HTTP address other nodes forward client requests to, kept in the cluster configuration with this node's raft
    /// address. Empty (the default) for a node that serves no HTTP, such as an embedded one.
    /// </summary>
    public string HttpAdvertiseAddress { get; init; } = "";

    /// <summary>Keep the log in memory only: fast, and lost on restart. Writes are acknowledged without fsync.</summary>
    public bool InMemory { get; init; }

    /// <summary>Found a new one-node cluster if the data directory is empty (the server decides this from -join).</summary>
    public bool Bootstrap { get; init; }

    /// <summary>Leader heartbeat interval.</summary>
    public TimeSpan HeartbeatTimeout { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Base election timeout: a follower that hears no leader for a random time in [T, 2T) starts an election.</summary>
    public TimeSpan ElectionTimeout { get; init; } = TimeSpan.FromMilliseconds(1000);

    /// <summary>
    /// Entries applied since the last snapshot that trigger a new one (hashicorp/raft's SnapshotThreshold), or half the
    /// number of keys held if that is more (so that snapshot work per write does not grow with the data).
    /// </summary>
    public int SnapshotThreshold { get; init; } = 8192;

    /// <summary>Entries kept in the log behind a snapshot, so slightly lagging followers need no snapshot (TrailingLogs).</summary>
    public int TrailingLogs { get; init; } = 10240;

    /// <summary>How often to check whether a snapshot is due (SnapshotInterval).</summary>
    public TimeSpan SnapshotInterval { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>Snapshots kept on disk.</summary>
    public int SnapshotsRetained { get; init; } = 2;

    /// <summary>
    /// Forward calls that need the leader (writes, membership changes, weak and strong reads) from a follower to the
    /// leader over the raft transport, so an embedding program can call any node. Off, a follower refuses them with
    /// <see cref="NodeErrorKind.NotLeader"/> naming the leader. raftkvd turns this off and plugs in its own way to the
    /// leader instead (HTTP to the leader's HTTP address); the decision to forward is the node's either way.
    /// </summary>
    public bool ForwardToLeader { get; init; } = true;

    /// <summary>
    /// Complete writes and linearizable reads on the raft loop's own thread, so that whatever awaits them runs there
    /// too, instead of on a pool thread woken for each request. It saves a thread switch per request (raftkvd turns it
    /// on: linearizable reads 29,800/s vs 23,100/s), but code that awaits a node call then runs on the thread that
    /// drives consensus: if it blocks, elections, replication and every other request wait for it. Leave it off unless
    /// no code after such an await blocks (architecture.md, "Threads").
    /// </summary>
    public bool InlineCompletions { get; init; }

    /// <summary>How long a client request may take before it fails with a timeout, waiting for a leader and forwarding included.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// Limits and timeouts of the raft transport. Its frame limit also bounds the largest write the node accepts
    /// (<see cref="EntryLimits"/>), so every node of a cluster should use the same one.
    /// </summary>
    public TransportOptions Transport { get; init; } = TransportOptions.Default;

    /// <summary>
    /// Most client requests (writes, reads above level None, status calls) that may wait for the raft loop to take
    /// them. While the loop is stalled (a slow disk), requests beyond this are refused at once as busy (raftkvd: 503
    /// with Retry-After) instead of piling up in memory.
    /// </summary>
    public int MaxQueuedRequests { get; init; } = DefaultMaxQueuedRequests;

    /// <summary>The default of <see cref="MaxQueuedRequests"/>.</summary>
    public const int DefaultMaxQueuedRequests = 10_000;

    /// <summary>Most bytes of write commands that may wait for the raft loop (256 MiB); beyond it writes are refused as busy, like <see cref="MaxQueuedRequests"/>.</summary>
    public long MaxQueuedBytes { get; init; } = DefaultMaxQueuedBytes;

    /// <summary>The default of <see cref="MaxQueuedBytes"/>.</summary>
    public const long DefaultMaxQueuedBytes = 256L << 20;

    /// <summary>Tests only: runs instead of the WAL flush on the sync thread (to make a leader's disk hang).</summary>
    internal Action<RaftKv.Storage.BackgroundSync>? WalFlushForTests { get; init; }

    /// <summary>The raft address others should use.</summary>
    public string RaftAddress => RaftAdvertiseAddress ?? RaftBindAddress;

    /// <summary>Longest heartbeat, election and request timeout: timers and deadlines built on them stay far from their limits.</summary>
    public static readonly TimeSpan MaxTimeout = TimeSpan.FromHours(24);

    /// <summary>Longest <see cref="SnapshotInterval"/>.</summary>
    public static readonly TimeSpan MaxSnapshotInterval = TimeSpan.FromDays(365);

    /// <summary>
    /// Throws <see cref="ArgumentException"/> (its <see cref="ArgumentException.ParamName"/> the option) when an option
    /// breaks a rule: an id or address a join would refuse, timeouts out of order, a size below its minimum.
    /// <see cref="KvNode.StartAsync(NodeOptions, Microsoft.Extensions.Logging.ILoggerFactory?, CancellationToken)"/>
    /// calls it, so an embedded node obeys the same rules as raftkvd, whose flags go through them too (<see cref="FindProblem"/>).
    /// </summary>
    public void Validate()
    {
        if (FindProblem() is { } problem) throw new ArgumentException(problem.Message, problem.Option);
        ArgumentNullException.ThrowIfNull(Transport);
        Transport.Validate();
        EntryLimits.ValidateFrameSize(Transport.MaxFrameSize);
    }

    /// <summary>
    /// The first rule an option breaks, or null when all hold (the transport's own options aside: see
    /// <see cref="TransportOptions.Validate"/>). Messages name options through <paramref name="nameOf"/> (given a
    /// property name; the name itself by default), so a command line can show its flags instead.
    /// </summary>
    public NodeOptionsProblem? FindProblem(Func<string, string>? nameOf = null)
    {
        var name = nameOf ?? (n => n);
        // Two shapes of message: "Id: a node id must not be empty" (a finding about the value) and
        // "TrailingLogs must not be negative" (the rule itself); raftkvd's flags have always printed both.
        NodeOptionsProblem About(string option, string finding) => new(option, $"{name(option)}: {finding}");
        NodeOptionsProblem Must(string option, string rule) => new(option, $"{name(option)} {rule}");

        if (NodeIds.Problem(Id) is { } idProblem) return About(nameof(Id), idProblem);
        if (!InMemory && string.IsNullOrWhiteSpace(DataDirectory)) return Must(nameof(DataDirectory), "must name a directory (or set InMemory)");
        if (!NetworkAddress.TryParse(RaftBindAddress, out var bind)) return About(nameof(RaftBindAddress), NetworkAddress.Problem(RaftBindAddress)!);
        if (bind.Port == 0) return About(nameof(RaftBindAddress), $"\"{RaftBindAddress}\" needs a fixed port (0 would pick one other nodes cannot know)");
        if (RaftAdvertiseAddress is not null)
        {
            if (NetworkAddress.ReachableProblem(RaftAdvertiseAddress) is { } advertise) return About(nameof(RaftAdvertiseAddress), advertise);
        }
        else if (bind.IsAnyInterface)
        {
            // The raft address goes into the cluster configuration, where it would tell every other node to dial itself.
            return About(nameof(RaftBindAddress),
                $"\"{RaftBindAddress}\" listens on every interface, which other nodes cannot dial: give {name(nameof(RaftAdvertiseAddress))} an address they can");
        }
        if (HttpAdvertiseAddress is null) return Must(nameof(HttpAdvertiseAddress), "must not be null (empty: no HTTP address)");
        if (HttpAdvertiseAddress.Length > 0 && NetworkAddress.ReachableProblem(HttpAdvertiseAddress) is { } http) return About(nameof(HttpAdvertiseAddress), http);

        if (DurationRule(HeartbeatTimeout, MaxTimeout) is { } heartbeat) return Must(nameof(HeartbeatTimeout), heartbeat);
        if (DurationRule(ElectionTimeout, MaxTimeout) is { } election) return Must(nameof(ElectionTimeout), election);
        // A follower must hear from a live leader within its election timeout, or it starts elections against it.
        if (ElectionTimeout <= HeartbeatTimeout) return Must(nameof(ElectionTimeout), "must be longer than " + name(nameof(HeartbeatTimeout)));
        if (DurationRule(RequestTimeout, MaxTimeout) is { } request) return Must(nameof(RequestTimeout), request);
        if (DurationRule(SnapshotInterval, MaxSnapshotInterval) is { } interval) return Must(nameof(SnapshotInterval), interval);

        if (SnapshotThreshold < 1) return Must(nameof(SnapshotThreshold), "must be positive");
        if (TrailingLogs < 0) return Must(nameof(TrailingLogs), "must not be negative");
        if (SnapshotsRetained < 1) return Must(nameof(SnapshotsRetained), "must be at least 1");
        if (MaxQueuedRequests < 1) return Must(nameof(MaxQueuedRequests), "must be at least 1");
        if (MaxQueuedBytes < 1) return Must(nameof(MaxQueuedBytes), "must be at least 1");
        return null;
    }

    private static string? DurationRule(TimeSpan value, TimeSpan max) =>
        value <= TimeSpan.Zero ? "must be positive"
        : value > max ? "must be at most " + (max.TotalDays >= 2
            ? max.TotalDays.ToString(CultureInfo.InvariantCulture) + " days"
            : max.TotalHours.ToString(CultureInfo.InvariantCulture) + " hours")
        : null;
}
