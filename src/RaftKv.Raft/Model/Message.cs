namespace RaftKv.Raft;

/// <summary>Kinds of message exchanged between cores.</summary>
public enum MessageType : byte
{
    /// <summary>Candidate asks for a vote (RequestVote RPC). Index/LogTerm: the candidate's last entry.</summary>
    Vote,
    /// <summary>Answer to <see cref="Vote"/>; Reject says whether it was granted.</summary>
    VoteResponse,
    /// <summary>Pre-candidate asks whether it would get a vote in Term (its term + 1) without raising any term (thesis §9.6).</summary>
    PreVote,
    /// <summary>Answer to <see cref="PreVote"/>.</summary>
    PreVoteResponse,
    /// <summary>AppendEntries RPC. Index/LogTerm: the entry preceding Entries; Commit: the leader's commit index.</summary>
    Append,
    /// <summary>Answer to <see cref="Append"/> or <see cref="InstallSnapshot"/>. Index: the follower's last matching index (accepted) or the rejected Index; RejectHint/LogTerm: conflict hint.</summary>
    AppendResponse,
    /// <summary>Leader's heartbeat. Commit: what the follower may commit; Context: the read-confirmation round it belongs to;
    /// Index: the leader's own commit index (how far a restarted follower must apply before it is ready).</summary>
    Heartbeat,
    /// <summary>Answer to <see cref="Heartbeat"/>, echoing its Context.</summary>
    HeartbeatResponse,
    /// <summary>InstallSnapshot RPC: Snapshot names the snapshot; the runtime streams its bytes alongside.</summary>
    InstallSnapshot,
    /// <summary>Leadership transfer: tells the target to campaign at once (thesis §3.10).</summary>
    TimeoutNow,
    /// <summary>A follower asks the leader for a read index; Context: the follower's request id.</summary>
    ReadIndex,
    /// <summary>Answer to <see cref="ReadIndex"/>: Index is the read index, or Reject when the receiver cannot serve it.</summary>
    ReadIndexResponse,
}

/// <summary>
/// A message between two cores. One flat type for every kind keeps the codec and the simulator simple;
/// the fields each kind uses are listed on <see cref="MessageType"/>.
/// </summary>
public sealed class Message
{
    /// <summary>Kind of message.</summary>
    public MessageType Type { get; init; }
    /// <summary>Sender id.</summary>
    public string From { get; init; } = "";
    /// <summary>Recipient id.</summary>
    public string To { get; init; } = "";
    /// <summary>Sender's term (for PreVote: the term it would campaign in).</summary>
    public ulong Term { get; init; }
    /// <summary>A log term: of the entry at Index (Append, Vote) or the conflict hint (AppendResponse).</summary>
    public ulong LogTerm { get; init; }
    /// <summary>A log index; meaning depends on Type.</summary>
    public ulong Index { get; init; }
    /// <summary>Entries carried by Append.</summary>
    public ReadOnlyMemory<Entry> Entries { get; init; }
    /// <summary>Leader's commit index (Append, Heartbeat).</summary>
    public ulong Commit { get; init; }
    /// <summary>Refusal (responses).</summary>
    public bool Reject { get; init; }
    /// <summary>For a rejected Append: the index the follower suggests the leader probe next (fast backtracking).</summary>
    public ulong RejectHint { get; init; }
    /// <summary>Snapshot offered by InstallSnapshot.</summary>
    public SnapshotMetadata? Snapshot { get; init; }
    /// <summary>Opaque number: read round (Heartbeat), read request id (ReadIndex).</summary>
    public ulong Context { get; init; }
    /// <summary>Vote requested because of a leadership transfer: voters skip the leader-lease check.</summary>
    public bool Transfer { get; init; }
    /// <summary>
    /// The sender's incarnation, stamped by the receiving transport from the connection's handshake (not carried in
    /// each message); 0 when unknown. See <see cref="Member.Incarnation"/>.
    /// </summary>
    public ulong FromIncarnation { get; init; }

    /// <summary>A copy stamped with the sender's incarnation (what a transport does with the incarnation its connection announced).</summary>
    public Message WithFromIncarnation(ulong incarnation) => new()
    {
        Type = Type, From = From, To = To, Term = Term, LogTerm = LogTerm, Index = Index, Entries = Entries, Commit = Commit,
        Reject = Reject, RejectHint = RejectHint, Snapshot = Snapshot, Context = Context, Transfer = Transfer,
        FromIncarnation = incarnation,
    };

    /// <summary>True for requests a leader sends (appends, heartbeats, snapshots), which the thesis (§10.2.1) lets leave before the leader's own entries are durable.</summary>
    public bool IsLeaderReplication => Type is MessageType.Append or MessageType.Heartbeat or MessageType.InstallSnapshot;

    /// <inheritdoc />
    public override string ToString() =>
        $"{Type} {From}->{To} t{Term} i{Index} lt{LogTerm} c{Commit} n{Entries.Length}{(Reject ? " reject hint " + RejectHint : "")}{(Snapshot is null ? "" : " snap " + Snapshot.Index)} ctx{Context}";
}
