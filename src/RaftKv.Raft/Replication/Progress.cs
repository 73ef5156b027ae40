namespace RaftKv.Raft;

/// <summary>How the leader is currently replicating to one follower.</summary>
public enum ReplicationState
{
    /// <summary>Match unknown: send one Append at a time and wait, backtracking on rejection.</summary>
    Probe,
    /// <summary>Follower is in step: pipeline Appends up to the in-flight window.</summary>
    Replicate,
    /// <summary>Follower needs entries already compacted: a snapshot is on its way; send nothing else.</summary>
    Snapshot,
}

/// <summary>The leader's view of one member's log (Raft Figure 2's nextIndex and matchIndex, plus flow control).</summary>
internal sealed class Progress
{
    public Progress(ulong next, int maxInflight, long maxInflightBytes)
    {
        Next = next;
        Inflights = new Inflights(maxInflight, maxInflightBytes);
    }

    /// <summary>Highest index known to be replicated on the member.</summary>
    public ulong Match { get; set; }

    /// <summary>Next index to send.</summary>
    public ulong Next { get; set; }

    public ReplicationState State { get; private set; } = ReplicationState.Probe;

    /// <summary>In Probe: an Append is out and unanswered, so send no other.</summary>
    public bool ProbeSent { get; set; }

    /// <summary>Index of the snapshot being sent (Snapshot state).</summary>
    public ulong PendingSnapshot { get; private set; }

    /// <summary>Ticks spent in the Snapshot state; a snapshot unanswered for an election timeout is retried (unless the runtime reports outcomes, <see cref="RaftOptions.SnapshotOutcomesReported"/>).</summary>
    public int SnapshotTicks { get; set; }

    /// <summary>The member's incarnation as its last message said (0 until it says one).</summary>
    public ulong Incarnation { get; set; }

    /// <summary>Check-quorum rounds since the member's removal was committed (removed members only).</summary>
    public int RoundsSinceRemoved { get; set; }

    /// <summary>Heard from since the last check-quorum round.</summary>
    public bool RecentActive { get; set; }

    public Inflights Inflights { get; }

    public bool IsPaused => State switch
    {
        ReplicationState.Probe => ProbeSent,
        ReplicationState.Replicate => Inflights.Full,
        _ => true,
    };

    public void BecomeProbe()
    {
        // Coming back from a snapshot, the follower holds at least the snapshot.
        if (State == ReplicationState.Snapshot)
        {
            var pending = PendingSnapshot;
            ResetState(ReplicationState.Probe);
            Next = Math.Max(Match + 1, pending + 1);
        }
        else
        {
            ResetState(ReplicationState.Probe);
            Next = Match + 1;
        }
    }

    /// <summary>The snapshot was lost or refused: probe from what the follower is known to hold, not from the snapshot.</summary>
    public void SnapshotFailed()
    {
        PendingSnapshot = 0;
        ResetState(ReplicationState.Probe);
        Next = Match + 1;
    }

    public void BecomeReplicate()
    {
        ResetState(ReplicationState.Replicate);
        Next = Match + 1;
    }

    public void BecomeSnapshot(ulong snapshotIndex)
    {
        ResetState(ReplicationState.Snapshot);
        PendingSnapshot = snapshotIndex;
    }

    private void ResetState(ReplicationState state)
    {
        State = state;
        ProbeSent = false;
        PendingSnapshot = 0;
        SnapshotTicks = 0;
        Inflights.Reset();
    }

    /// <summary>An acknowledgement up to <paramref name="n"/>: returns false when it is stale.</summary>
    public bool MaybeUpdate(ulong n)
    {
        var updated = false;
        if (Match < n)
        {
            Match = n;
            updated = true;
            ProbeSent = false;
        }
        Next = Math.Max(Next, n + 1);
        return updated;
    }

    /// <summary>Pipelining: assume the entries up to <paramref name="n"/> will arrive.</summary>
    public void OptimisticUpdate(ulong n) => Next = n + 1;

    /// <summary>
    /// A rejection of the Append whose previous index was <paramref name="rejected"/>; <paramref name="probeHint"/> is the
    /// index the follower's conflict hint lets the leader jump back to. Returns false for a stale rejection.
    /// </summary>
    public bool BackOffAfterRejection(ulong rejected, ulong probeHint)
    {
        if (State == ReplicationState.Replicate)
        {
            // Stale if the follower has already acknowledged beyond it.
            if (rejected <= Match) return false;
            Next = Match + 1;
            return true;
        }
        // In Probe only the answer to the latest probe counts.
        if (Next - 1 != rejected) return false;
        Next = Math.Max(Math.Min(rejected, probeHint + 1), Match + 1);
        ProbeSent = false;
        return true;
    }

    public override string ToString() => $"{State} match={Match} next={Next} inflight={Inflights.Count}";
}
