using RaftKv.Node.StateMachine;
using RaftKv.Raft;

namespace RaftKv.Node.Runtime;

/// <summary>The snapshot store as the <see cref="ReadyProcessor"/> uses it: files in a node, memory in the simulator.</summary>
internal interface ISnapshotFiles
{
    /// <summary>Opens a snapshot received from the leader (the transport stored it before the core heard of it).</summary>
    /// <exception cref="InvalidOperationException">It is not in the store.</exception>
    Stream OpenReceived(ulong index);

    /// <summary>Received snapshots up to <paramref name="index"/> will never be installed: the store may prune them.</summary>
    void ReleaseReceived(ulong index);

    /// <summary>
    /// Writes <paramref name="view"/> as snapshot <paramref name="meta"/> off the raft loop; when it is stored (or
    /// failed), the outcome is reported with <see cref="ReadyProcessor.SnapshotWritten"/>.
    /// </summary>
    void StartWrite(SnapshotMetadata meta, IStateSnapshot view);
}
