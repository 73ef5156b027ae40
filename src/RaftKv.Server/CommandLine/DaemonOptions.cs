using Microsoft.Extensions.Logging;
using RaftKv.Node;

namespace RaftKv.Server.CommandLine;

/// <summary>Everything <c>raftkvd</c>'s command line says, validated and with defaults applied.</summary>
public sealed record DaemonOptions
{
    /// <summary>Where the node keeps its log and snapshots (the positional argument).</summary>
    public required string DataDirectory { get; init; }

    /// <summary>This node's id (default: the advertised raft address, as hraftd).</summary>
    public required string Id { get; init; }

    /// <summary>HTTP bind address, host:port (<c>-haddr</c>).</summary>
    public required string HttpAddress { get; init; }

    /// <summary>HTTP address other nodes and joiners use to reach this one (default: the bind address).</summary>
    public required string HttpAdvertiseAddress { get; init; }

    /// <summary>Raft bind address (<c>-raddr</c>).</summary>
    public required string RaftAddress { get; init; }

    /// <summary>Raft address others use (default: the bind address).</summary>
    public required string RaftAdvertiseAddress { get; init; }

    /// <summary>HTTP addresses to ask to join, normalized (":11000" becomes "localhost:11000"). Empty: none.</summary>
    public IReadOnlyList<string> Join { get; init; } = [];

    /// <summary>Keep the log in memory only (<c>-inmem</c>).</summary>
    public bool InMemory { get; init; }

    /// <summary>Leader heartbeat interval.</summary>
    public TimeSpan HeartbeatTimeout { get; init; } = TimeSpan.FromMilliseconds(100);

    /// <summary>Base election timeout.</summary>
    public TimeSpan ElectionTimeout { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Applied entries that trigger a snapshot.</summary>
    public int SnapshotThreshold { get; init; } = 8192;

    /// <summary>Entries kept behind a snapshot.</summary>
    public int TrailingLogs { get; init; } = 10240;

    /// <summary>How often to check whether a snapshot is due.</summary>
    public TimeSpan SnapshotInterval { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>How long one client request may take, forwarding and waiting for a leader included.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Largest request body accepted.</summary>
    public long MaxBodyBytes { get; init; } = ServerOptions.DefaultMaxBodyBytes;

    /// <summary>Most requests that may wait for the raft loop (<see cref="NodeOptions.MaxQueuedRequests"/>).</summary>
    public int MaxQueuedRequests { get; init; } = NodeOptions.DefaultMaxQueuedRequests;

    /// <summary>Most bytes of writes that may wait for the raft loop (<see cref="NodeOptions.MaxQueuedBytes"/>).</summary>
    public long MaxQueuedBytes { get; init; } = NodeOptions.DefaultMaxQueuedBytes;

    /// <summary>Log level from -v/-debug/-trace (default Warning).</summary>
    public LogLevel LogLevel { get; init; } = LogLevel.Warning;

    /// <summary>
    /// The join targets other than this node itself. The fork starts every node with the same <c>--rjoin</c>, so the
    /// node that list names is the one that founds the cluster; it must not try to join itself.
    /// </summary>
    public IReadOnlyList<string> JoinTargetsExcludingSelf() =>
        Join.Where(a => !HostPort.SameEndpoint(a, HttpAddress) && !HostPort.SameEndpoint(a, HttpAdvertiseAddress)).ToList();

    /// <summary>What the node needs, given whether to bootstrap.</summary>
    public NodeOptions ToNodeOptions(bool bootstrap) => new()
    {
        Id = Id,
        DataDirectory = DataDirectory,
        RaftBindAddress = RaftAddress,
        RaftAdvertiseAddress = RaftAdvertiseAddress,
        HttpAdvertiseAddress = HttpAdvertiseAddress,
        InMemory = InMemory,
        Bootstrap = bootstrap,
        HeartbeatTimeout = HeartbeatTimeout,
        ElectionTimeout = ElectionTimeout,
        SnapshotThreshold = SnapshotThreshold,
        TrailingLogs = TrailingLogs,
        SnapshotInterval = SnapshotInterval,
        RequestTimeout = RequestTimeout,
        MaxQueuedRequests = MaxQueuedRequests,
        MaxQueuedBytes = MaxQueuedBytes,
        // Not over the raft transport: the server plugs in HTTP forwarding (ServerContext).
        ForwardToLeader = false,
        // No HTTP handler blocks after awaiting the node (architecture.md, "Threads"), so requests finish on the loop.
        InlineCompletions = true,
    };

    /// <summary>What the HTTP app needs.</summary>
    public ServerOptions ToServerOptions() => new()
    {
        HttpAddress = HttpAddress,
        RequestTimeout = RequestTimeout,
        MaxBodyBytes = MaxBodyBytes,
    };
}
