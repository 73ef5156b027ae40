using RaftKv.Raft;

namespace RaftKv.Node.Runtime;

/// <summary>Where the <see cref="ReadyProcessor"/> sends messages: the transport in a node, the simulated network in the simulator.</summary>
internal interface IMessageSink
{
    /// <summary>Sends a message without waiting; false when the peer cannot be reached now (the core then backs off).</summary>
    bool Send(Message message);

    /// <summary>
    /// Starts streaming the snapshot an InstallSnapshot names; false when it cannot even start (the snapshot is gone).
    /// The outcome of a transfer that started is reported with <see cref="ReadyProcessor.SnapshotSent"/>.
    /// </summary>
    bool SendSnapshot(Message message);

    /// <summary>The configuration in force changed (members' addresses, the cluster's identity); called before any message to a new member.</summary>
    void ConfigurationChanged(ClusterConfig config);
}
