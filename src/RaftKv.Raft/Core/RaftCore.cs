namespace RaftKv.Raft;

/// <summary>
/// Raft as a deterministic state machine: no I/O, no clock, no threads, no global randomness. The runtime feeds it
/// <see cref="Tick"/>s, peer <see cref="Message"/>s and client requests, then collects a <see cref="Ready"/>, carries it out
/// (persist, send, apply) and calls <see cref="Advance"/>. Between <see cref="GetReady"/> and <see cref="Advance"/> no other
/// input may be given.
/// </summary>
/// <remarks>
/// The class is split by concern: elections (<c>RaftCore.Election.cs</c>), log replication (<c>RaftCore.Replication.cs</c>),
/// membership (<c>RaftCore.Membership.cs</c>), reads (<c>RaftCore.Reads.cs</c>) and leadership transfer (<c>RaftCore.Transfer.cs</c>).
/// docs/consensus.md maps each rule of the Raft paper to the code here.
/// </remarks>
public sealed partial class RaftCore
{
    // The core's whole state is declared here; the partial files hold behaviour only.

    private readonly RaftOptions _options;
    private readonly RaftLog _log;
    private readonly Random _random;
    private readonly Action<RaftTraceEvent>? _trace;

    // The configuration in force, the leader's progress per member and a candidate's votes: what quorums are counted from.
    private readonly ProgressTracker _tracker;

    // Every configuration the log holds, so a truncation can bring back the previous one.
    private readonly ConfigHistory _configs = new();

    // Output accumulated between Readies, and what the last one reported.
    private readonly Ready _ready = new();
    private HardState _lastHardState;
    private SoftState _lastSoftState;
    private bool _readyOutstanding;

    // Time since the last valid message from the leader (followers), or since the last check-quorum round (leaders).
    private int _electionElapsed;
    private int _heartbeatElapsed;
    private int _randomizedElectionTimeout;

    // Set when entries were appended on the leader and not yet broadcast: the broadcast waits for the next Ready so
    // that every proposal that arrived meanwhile travels in one Append per follower.
    private bool _broadcastPending;

    // A commit index that moved and has not been sent to followers yet (see FlushBroadcasts).
    private bool _commitBroadcastPending;

    // Bytes of this leader's proposals not yet committed (bounded by RaftOptions.MaxUncommittedBytes).
    private long _uncommittedBytes;

    // First index of this leader's term (its no-op): reads and configuration changes wait until it is committed.
    private ulong _ownTermStart;

    // The node leadership is being handed to, or null.
    private string? _leadTransferee;

    // The leader's pending ReadIndex requests, and a reused list of those a round releases.
    private readonly ReadIndexQueue _reads = new();
    private readonly List<ReadIndexQueue.PendingRead> _released = [];

    // Reads this follower forwarded to its leader and has not heard back about. A forwarded read whose message is
    // lost stays here until leadership changes, unless the runtime gives up on it first (AbandonRead).
    private readonly HashSet<ulong> _forwardedReads = [];

    /// <summary>Creates a core over a storage holding the durable state (empty for a new node).</summary>
    public RaftCore(RaftOptions options, IRaftLogStorage storage)
    {
        options.Validate();
        _options = options;
        _random = options.Random;
        _trace = options.Trace;
        _tracker = new ProgressTracker(options.MaxInflightMessages, options.MaxInflightBytes);
        _log = new RaftLog(storage, options.Applied ?? storage.Snapshot.Index);
        var hs = storage.HardState;
        Term = hs.Term;
        VotedFor = hs.VotedFor;
        _lastHardState = new HardState(Term, VotedFor, _log.Committed);
        LoadConfiguration(storage);
        BecomeFollower(Term, null, reason: null);
        _lastSoftState = SoftState;
    }

    /// <summary>
    /// Prepares the empty storage of a server that founds a new cluster: its log starts with one configuration entry
    /// (index 1, term 1), committed, naming <paramref name="config"/>'s members. Every founding member is bootstrapped
    /// with the same configuration; servers that join later start empty and are added by the leader.
    /// </summary>
    public static void Bootstrap(IRaftLogStorage storage, ClusterConfig config)
    {
        if (storage.LastIndex != 0 || !storage.HardState.IsEmpty || !storage.Snapshot.IsEmpty)
            throw new InvalidOperationException("bootstrap needs empty storage; this node already has state");
        if (config.Voters.Length == 0) throw new ArgumentException("a new cluster needs at least one voter", nameof(config));
        storage.Append([new Entry(1, 1, EntryType.Configuration, config.Encode())]);
        storage.SetHardState(new HardState(1, null, 1));
        storage.Sync();
    }

    /// <summary>This server's id.</summary>
    public string Id => _options.Id;

    /// <summary>Current term.</summary>
    public ulong Term { get; private set; }

    /// <summary>Whom this node voted for in <see cref="Term"/>.</summary>
    public string? VotedFor { get; private set; }

    /// <summary>Current role.</summary>
    public Role Role { get; private set; }

    /// <summary>The leader this node knows for <see cref="Term"/>, or null.</summary>
    public string? Leader { get; private set; }

    /// <summary>Highest committed index known.</summary>
    public ulong CommitIndex => _log.Committed;

    /// <summary>Highest index handed to the state machine and acknowledged.</summary>
    public ulong AppliedIndex => _log.Applied;

    /// <summary>Index of the last entry in the log (durable or not).</summary>
    public ulong LastIndex => _log.LastIndex;

    /// <summary>Term of the last entry in the log.</summary>
    public ulong LastTerm => _log.LastTerm;

    /// <summary>Index of the first entry still in the log.</summary>
    public ulong FirstIndex => _log.FirstIndex;

    /// <summary>Term of the entry at <paramref name="index"/>, or null if it is compacted or beyond the log.</summary>
    public ulong? TermAt(ulong index) => _log.TryTerm(index);

    /// <summary>Role, leader and term together.</summary>
    public SoftState SoftState => new(Role, Leader, Term);

    /// <summary>The leader's view of each member's replication (empty on other roles): match index and state.</summary>
    public IReadOnlyDictionary<string, (ulong Match, ulong Next, ReplicationState State, bool RecentActive)> ReplicationStatus =>
        Role != Role.Leader
            ? new Dictionary<string, (ulong, ulong, ReplicationState, bool)>()
            : ReplicationStatusOfLeader();

    private Dictionary<string, (ulong, ulong, ReplicationState, bool)> ReplicationStatusOfLeader()
    {
        var status = new Dictionary<string, (ulong, ulong, ReplicationState, bool)>();
        foreach (var (id, pr) in _tracker) status[id] = (pr.Match, pr.Next, pr.State, pr.RecentActive);
        return status;
    }

    private bool IsSingleVoterLeader => Role == Role.Leader && Config.Voters.Length == 1 && Config.Voters[0] == Id;

    /// <summary>Advances logical time by one tick: drives election timeouts, heartbeats and check-quorum.</summary>
    public void Tick()
    {
        EnsureNoReadyOutstanding();
        if (Role == Role.Leader) TickLeader();
        else TickElection();
    }

    /// <summary>Messages ignored because they came from another incarnation of a member than the configuration's.</summary>
    public long StaleIncarnationDrops { get; private set; }

    /// <summary>
    /// True when <paramref name="m"/> is an answer (a vote, an append or heartbeat acknowledgement) from another
    /// incarnation of a member than the one the configuration names: that server lost the state the member
    /// acknowledged (a wiped data directory), so its answers must not count, least of all its vote. It is let in again
    /// once a configuration names its new incarnation.
    /// </summary>
    /// <remarks>
    /// Only answers: they are what a quorum is counted from. Requests are judged by the usual rules (terms, the log
    /// check), and must be: a follower whose log is behind still names a member's previous incarnation, and must be
    /// able to take the log (and with it the configuration that names the new one) from a leader of the new one.
    /// </remarks>
    public bool IsFromStaleIncarnation(Message m) =>
        m.FromIncarnation != 0
        && m.Type is MessageType.VoteResponse or MessageType.PreVoteResponse or MessageType.AppendResponse or MessageType.HeartbeatResponse
        && Config.Find(m.From) is { Incarnation: not 0 } member && member.Incarnation != m.FromIncarnation;

    /// <summary>The incarnation the leader last heard from <paramref name="id"/> (0 if none, or not the leader).</summary>
    public ulong ObservedIncarnation(string id) => _tracker.TryGet(id, out var pr) ? pr.Incarnation : 0;

    /// <summary>Is this server, in this incarnation, a voter of <paramref name="config"/>?</summary>
    private bool IsVoterIn(ClusterConfig config) =>
        config.Find(Id) is { IsVoter: true } self && (self.Incarnation == 0 || _options.Incarnation == 0 || self.Incarnation == _options.Incarnation);

    /// <summary>Handles a message from a peer.</summary>
    public void Step(Message m)
    {
        EnsureNoReadyOutstanding();
        if (m.To != Id) throw new ArgumentException($"message for {m.To} delivered to {Id}", nameof(m));
        // The transport drops (and logs) malformed messages before they get here; this is the last guard, because the
        // handlers below assume well-formed input, and an exception here would stop the node.
        if (MessageValidator.FindProblem(m) is not null) return;
        if (IsFromStaleIncarnation(m))
        {
            // Before its term is looked at: a forgetful server's answer must not even move this node's term.
            StaleIncarnationDrops++;
            return;
        }
        if (m.FromIncarnation != 0 && _tracker.TryGet(m.From, out var progress)) progress.Incarnation = m.FromIncarnation;
        if (!StepTerm(m)) return;
        switch (m.Type)
        {
            case MessageType.PreVote:
            case MessageType.Vote:
                HandleVoteRequest(m);
                return;
        }
        switch (Role)
        {
            case Role.Leader: StepLeader(m); break;
            case Role.Candidate:
            case Role.PreCandidate: StepCandidate(m); break;
            default: StepFollower(m); break;
        }
    }

    /// <summary>
    /// Proposes an application command. On the leader it is appended at once and the result names its (index, term);
    /// the command is applied when an entry at that index with that term is committed. Elsewhere it is refused.
    /// </summary>
    public ProposeResult Propose(ReadOnlyMemory<byte> data)
    {
        EnsureNoReadyOutstanding();
        var refusal = CheckCanPropose(data.Length + 24L);
        if (refusal is not null) return refusal.Value;
        return AppendOwn(EntryType.Normal, data);
    }

    /// <summary>Starts an election at once if this node may campaign, without waiting for its election timeout (tests and benchmarks use it to pick a leader).</summary>
    public void Campaign()
    {
        EnsureNoReadyOutstanding();
        if (Role != Role.Leader) StartElection(transfer: false, "asked to campaign");
    }

    /// <summary>
    /// Set by the runtime while it holds new proposals back for a batch it will hand over soon (raftkvd: while the
    /// leader's last entries flush). Meanwhile a leader sends no Append that would carry only a new commit index: the
    /// next batch's Appends carry it, and each follower saves a message and its answer. Once cleared, a commit index
    /// not yet told goes out alone. Followers learn of a commit later, never wrongly: safety does not depend
    /// on when they learn it, and heartbeats carry it too.
    /// </summary>
    public bool DeferCommitOnlyAppends { get; set; }

    // A commit index that moved must go out in Appends of its own now (see FlushBroadcasts).
    private bool CommitOnlyAppendsDue => _commitBroadcastPending && !DeferCommitOnlyAppends;

    /// <summary>True if <see cref="GetReady"/> has anything to hand out.</summary>
    public bool HasReady
    {
        get
        {
            if (_readyOutstanding) return false;
            if (Role == Role.Leader && (_broadcastPending || CommitOnlyAppendsDue || _reads.RoundDue)) return true;
            if (_ready.MessageList.Count > 0 || _ready.EagerList.Count > 0 || _ready.ReadStateList.Count > 0 || _ready.FailedReadList.Count > 0) return true;
            if (_log.HasUnstable || _log.PendingSnapshot is not null || _log.HasNextCommitted) return true;
            if (CurrentHardState != _lastHardState) return true;
            return SoftState != _lastSoftState;
        }
    }

    private HardState CurrentHardState => new(Term, VotedFor, _log.Committed);

    /// <summary>
    /// Collects what the runtime must do now (see <see cref="Ready"/> for the order). Messages, read states and
    /// failed reads are accumulated by the core between calls and handed out here.
    /// </summary>
    public Ready GetReady()
    {
        EnsureNoReadyOutstanding();
        FlushBroadcasts();
        var r = _ready;
        var hs = CurrentHardState;
        if (hs != _lastHardState)
        {
            r.HardState = hs;
            r.TermOrVoteChanged = hs.Term != _lastHardState.Term || hs.VotedFor != _lastHardState.VotedFor;
        }
        var ss = SoftState;
        if (ss != _lastSoftState) r.SoftState = ss;
        r.Snapshot = _log.PendingSnapshot;
        _log.TakeUnstable(r.EntriesList);
        _log.TakeCommitted(_options.MaxCommittedBytesPerReady, r.CommittedList);
        _readyOutstanding = true;
        return r;
    }

    /// <summary>
    /// Acknowledges the last <see cref="Ready"/>: its writes are durable, its messages handed to the transport,
    /// its snapshot installed and its committed entries applied.
    /// </summary>
    public void Advance()
    {
        if (!_readyOutstanding) throw new InvalidOperationException("Advance without a Ready");
        var r = _ready;
        if (r.HardState is { } hs) _lastHardState = hs;
        if (r.SoftState is { } ss) _lastSoftState = ss;
        var lastApplied = r.CommittedList.Count > 0 ? r.CommittedList[^1].Index : 0;
        if (Role == Role.Leader) ReduceUncommitted(r.CommittedList);
        _log.Advance(r.Snapshot is not null, lastApplied);
        r.Clear();
        _readyOutstanding = false;
        if (Role == Role.Leader) UpdateOwnMatch();
    }

    /// <summary>
    /// With <see cref="RaftOptions.AsyncStorageSync"/>: entries up to <paramref name="index"/> that the runtime wrote
    /// (and acknowledged with Advance) are now durable. A lower index than reported before is ignored; entries replaced
    /// since the write began must not be reported (the runtime caps the index at the first replaced entry).
    /// </summary>
    public void ReportDurable(ulong index)
    {
        EnsureNoReadyOutstanding();
        if (!_options.AsyncStorageSync) throw new InvalidOperationException("ReportDurable needs RaftOptions.AsyncStorageSync");
        _log.MarkDurable(index);
        if (Role == Role.Leader) UpdateOwnMatch();
    }

    // The highest index of this node's own log that may count toward a quorum.
    private ulong OwnDurableIndex => _options.AsyncStorageSync ? Math.Min(_log.StableIndex, _log.DurableIndex) : _log.StableIndex;

    private void UpdateOwnMatch()
    {
        // Thesis §10.2.1: the leader's own entries count toward a quorum only once they are durable.
        var self = _tracker.Find(Id);
        if (self is not null && self.MaybeUpdate(OwnDurableIndex) && MaybeCommit()) _commitBroadcastPending = true;
    }

    private void EnsureNoReadyOutstanding()
    {
        if (_readyOutstanding) throw new InvalidOperationException("a Ready is outstanding: call Advance before giving the core more input");
    }

    private void Send(Message m)
    {
        // §10.2.1 lets a leader send before its own entries are durable, not before its term and vote are: a
        // single voter elects itself within one input, and if it crashed before persisting that term it could win
        // the same term again with a different log. Such messages wait for the sync like any other.
        if (m.IsLeaderReplication && _lastHardState.Term == Term && _lastHardState.VotedFor == VotedFor) _ready.EagerList.Add(m);
        else _ready.MessageList.Add(m);
    }

    private void ResetRandomizedElectionTimeout() =>
        _randomizedElectionTimeout = _options.ElectionTicks + _random.Next(_options.ElectionTicks);

    private void Reset(ulong term)
    {
        if (Term != term)
        {
            Term = term;
            VotedFor = null;
            Trace(RaftTraceKind.TermChanged);
        }
        Leader = null;
        _electionElapsed = 0;
        _heartbeatElapsed = 0;
        ResetRandomizedElectionTimeout();
        AbortLeaderTransfer("leadership changed");
        _tracker.ResetVotes();
        _broadcastPending = false;
        _uncommittedBytes = 0;
        FailPendingReads(ReadFailureReason.LeadershipChanged);
    }

    /// <param name="term">The term to follow in.</param>
    /// <param name="leader">Its leader, if known.</param>
    /// <param name="reason">Why, for the trace (null: nothing to report, the node is starting).</param>
    private void BecomeFollower(ulong term, string? leader, string? reason)
    {
        Reset(term);
        Role = Role.Follower;
        Leader = leader;
        _tracker.ClearProgress();
        if (reason is not null) Trace(RaftTraceKind.BecameFollower, leader, reason: reason);
    }

    private void BecomeLeader()
    {
        if (Role == Role.Follower) throw new InvalidOperationException("follower cannot become leader directly");
        Reset(Term);
        Role = Role.Leader;
        Leader = Id;
        Trace(RaftTraceKind.BecameLeader);
        ResetProgress();
        // A no-op of our own term: committing it commits everything before it (§5.4.2) and tells this leader its commit index (§8).
        _ownTermStart = _log.LastIndex + 1;
        AppendOwn(EntryType.Normal, ReadOnlyMemory<byte>.Empty);
    }

    // Reports a decision to RaftOptions.Trace. Callers pass constant phrases: with no sink, tracing costs a null check.
    private void Trace(RaftTraceKind kind, string? peer = null, ulong index = 0, string? reason = null) =>
        _trace?.Invoke(new RaftTraceEvent(kind, Id, Term, peer, index, reason));

    private ProposeResult? CheckCanPropose(long bytes)
    {
        if (Role != Role.Leader)
            return ProposeResult.Refused(Refusal.NotLeader, Leader, Leader is null ? "no leader is known" : $"not the leader; the leader is {Leader}");
        if (_leadTransferee is not null)
            return ProposeResult.Refused(Refusal.TransferInProgress, Leader, $"leadership is being transferred to {_leadTransferee}");
        if (_options.MaxUncommittedBytes > 0 && _uncommittedBytes > 0 && _uncommittedBytes + bytes > _options.MaxUncommittedBytes)
            return ProposeResult.Refused(Refusal.QueueFull, Leader, "too many uncommitted proposals; retry later");
        return null;
    }

    private ProposeResult AppendOwn(EntryType type, ReadOnlyMemory<byte> data)
    {
        var e = new Entry(_log.LastIndex + 1, Term, type, data);
        AppendToLog([e]);
        _uncommittedBytes += e.Size;
        // A single voter commits on its own durability, in Advance; others wait for the broadcast.
        _broadcastPending = true;
        return ProposeResult.Ok(e.Index, e.Term, Id);
    }
}
