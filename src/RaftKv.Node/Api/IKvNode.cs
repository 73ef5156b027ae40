namespace RaftKv.Node;

/// <summary>
/// What a RaftKv node offers its hosts (the HTTP server, an embedding program). Every method may throw
/// <see cref="NodeException"/>; each honours its cancellation token, and the node applies its own request timeout too.
/// </summary>
public interface IKvNode : IAsyncDisposable
{
    /// <summary>This node's id.</summary>
    string Id { get; }

    /// <summary>Sets every pair in one atomic log entry; returns the log index it was applied at. Leader only.</summary>
    Task<ulong> SetAsync(IReadOnlyList<KeyValuePair<string, string>> pairs, CancellationToken cancellationToken = default);

    /// <summary>Deletes a key (deleting a missing key succeeds). Leader only.</summary>
    Task<ulong> DeleteAsync(string key, CancellationToken cancellationToken = default);

    /// <summary>Reads a key at the given level; null when the key does not exist. Levels above None need the leader.</summary>
    Task<string?> GetAsync(string key, ReadLevel level, CancellationToken cancellationToken = default);

    /// <summary>
    /// Adds a server (or updates its addresses), as a voter or a non-voter. Leader only. Idempotent. A new voter joins
    /// as a non-voter, is caught up, then promoted; a server that lost its data (another incarnation under a member's
    /// id) replaces that member the same way. <see cref="NodeErrorKind.Conflict"/> if it belongs to another cluster.
    /// </summary>
    Task JoinAsync(JoinRequest request, CancellationToken cancellationToken = default);

    /// <summary>Removes a server; <see cref="NodeErrorKind.NotFound"/> if it is not a member. Leader only.</summary>
    Task RemoveAsync(string id, CancellationToken cancellationToken = default);

    /// <summary>Hands leadership to <paramref name="targetId"/> (or the most up-to-date voter when null) and waits until it leads.</summary>
    Task TransferLeadershipAsync(string? targetId, CancellationToken cancellationToken = default);

    /// <summary>Takes a snapshot now and compacts the log; returns the snapshot's index.</summary>
    Task<ulong> SnapshotAsync(CancellationToken cancellationToken = default);

    /// <summary>A consistent picture of this node.</summary>
    Task<NodeStatus> GetStatusAsync(CancellationToken cancellationToken = default);

    /// <summary>
    /// Completes, with a one-line reason, if the node stops by itself because its raft loop failed (a bug, a failed
    /// fsync, a full disk): it then serves nothing more, and its host should end (raftkvd exits with
    /// <c>Daemon.NodeFailed</c> so that a supervisor restarts it). Never completes otherwise.
    /// </summary>
    Task<string> Failed => NeverFails.Task;

    // The default for nodes that cannot fail this way.
    private static readonly TaskCompletionSource<string> NeverFails = new();
}
