namespace RaftKv.Node.Transport;

/// <summary>
/// Tuning of <see cref="TcpTransport"/>. The defaults suit a LAN cluster; every timeout exists so that no socket
/// operation can wait forever on a peer that vanished without closing its connection.
/// </summary>
public sealed class TransportOptions
{
    /// <summary>Largest frame accepted on read (and sent): 64 MiB. A larger length prefix closes the connection.</summary>
    public int MaxFrameSize { get; init; } = 64 << 20;

    /// <summary>Messages queued per peer before <see cref="TcpTransport.Send"/> starts dropping (returning false).</summary>
    public int SendQueueCapacity { get; init; } = 1024;

    /// <summary>How many bytes of frames the per-peer writer gathers into one socket write.</summary>
    public int MaxBatchBytes { get; init; } = 1 << 20;

    /// <summary>First delay before reconnecting to a peer after a failure; doubled on each further failure.</summary>
    public TimeSpan ReconnectMinDelay { get; init; } = TimeSpan.FromMilliseconds(50);

    /// <summary>Ceiling of the reconnect delay.</summary>
    public TimeSpan ReconnectMaxDelay { get; init; } = TimeSpan.FromSeconds(2);

    /// <summary>Time allowed to open a TCP connection and complete the handshake.</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(3);

    /// <summary>Time an inbound connection has to present its handshake.</summary>
    public TimeSpan HandshakeTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Time one socket write may take before the connection is considered dead (a peer that stopped reading).</summary>
    public TimeSpan WriteTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Bytes of snapshot data per chunk frame.</summary>
    public int SnapshotChunkSize { get; init; } = 1 << 20;

    /// <summary>Time a snapshot receiver waits for the next chunk before failing the transfer.</summary>
    public TimeSpan SnapshotReadTimeout { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Time a snapshot sender waits, after the last chunk, for the receiver to store the snapshot and acknowledge it.</summary>
    public TimeSpan SnapshotAckTimeout { get; init; } = TimeSpan.FromMinutes(2);

    /// <summary>
    /// Wait before a snapshot transfer to a peer is tried again after one failed; doubled on each further failure up to
    /// <see cref="SnapshotRetryMaxDelay"/>, reset by a success. A transfer in progress is never restarted.
    /// </summary>
    public TimeSpan SnapshotRetryMinDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>Ceiling of the snapshot retry wait.</summary>
    public TimeSpan SnapshotRetryMaxDelay { get; init; } = TimeSpan.FromSeconds(30);

    /// <summary>Idle time before TCP keep-alive probes start, so half-open connections are eventually noticed.</summary>
    public TimeSpan KeepAliveTime { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>How long <see cref="TcpTransport.DisposeAsync"/> waits for background tasks to end before abandoning them.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>The defaults.</summary>
    public static TransportOptions Default { get; } = new();

    /// <summary>Throws <see cref="ArgumentOutOfRangeException"/> when a value makes no sense.</summary>
    public void Validate()
    {
        // 16 bytes is the smallest frame that still carries a useful message; 1 GiB keeps lengths far from int overflow.
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxFrameSize, 16, nameof(MaxFrameSize));
        ArgumentOutOfRangeException.ThrowIfGreaterThan(MaxFrameSize, 1 << 30, nameof(MaxFrameSize));
        ArgumentOutOfRangeException.ThrowIfLessThan(SendQueueCapacity, 1, nameof(SendQueueCapacity));
        ArgumentOutOfRangeException.ThrowIfLessThan(MaxBatchBytes, 1, nameof(MaxBatchBytes));
        ArgumentOutOfRangeException.ThrowIfLessThan(SnapshotChunkSize, 1, nameof(SnapshotChunkSize));
        // A chunk frame is one kind byte plus the chunk, and must fit a frame.
        ArgumentOutOfRangeException.ThrowIfGreaterThan(SnapshotChunkSize, MaxFrameSize - 1, nameof(SnapshotChunkSize));
        Positive(ReconnectMinDelay, nameof(ReconnectMinDelay));
        Positive(ReconnectMaxDelay, nameof(ReconnectMaxDelay));
        if (ReconnectMaxDelay < ReconnectMinDelay) throw new ArgumentOutOfRangeException(nameof(ReconnectMaxDelay), ReconnectMaxDelay, "must not be below ReconnectMinDelay");
        Positive(ConnectTimeout, nameof(ConnectTimeout));
        Positive(HandshakeTimeout, nameof(HandshakeTimeout));
        Positive(WriteTimeout, nameof(WriteTimeout));
        Positive(SnapshotReadTimeout, nameof(SnapshotReadTimeout));
        Positive(SnapshotAckTimeout, nameof(SnapshotAckTimeout));
        Positive(SnapshotRetryMinDelay, nameof(SnapshotRetryMinDelay));
        Positive(SnapshotRetryMaxDelay, nameof(SnapshotRetryMaxDelay));
        if (SnapshotRetryMaxDelay < SnapshotRetryMinDelay) throw new ArgumentOutOfRangeException(nameof(SnapshotRetryMaxDelay), SnapshotRetryMaxDelay, "must not be below SnapshotRetryMinDelay");
        Positive(KeepAliveTime, nameof(KeepAliveTime));
        Positive(ShutdownTimeout, nameof(ShutdownTimeout));
    }

    private static void Positive(TimeSpan value, string name)
    {
        if (value <= TimeSpan.Zero || value.TotalMilliseconds > int.MaxValue) throw new ArgumentOutOfRangeException(name, value, "must be positive and below 24 days");
    }
}
