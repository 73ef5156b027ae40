namespace RaftKv.Raft;

/// <summary>
/// The leader's pending ReadIndex requests (thesis §6.4). Each read records the commit index when it arrived and
/// waits for a heartbeat round, sent after it arrived, that a quorum has answered. One round is in flight at a time:
/// every read that arrives while one is answered shares the next, so a thousand reads cost one heartbeat per
/// follower, and a busy leader sends rounds as fast as the followers answer rather than one per Ready.
/// </summary>
internal sealed class ReadIndexQueue
{
    internal readonly record struct PendingRead(ulong RequestId, string Origin, ulong Index, ulong Round);

    private readonly Queue<PendingRead> _confirming = new();
    private readonly List<(ulong RequestId, string Origin)> _beforeFirstCommit = [];
    private readonly Dictionary<string, ulong> _acks = [];

    /// <summary>Number of the last heartbeat round sent for reads.</summary>
    public ulong Round { get; private set; }

    /// <summary>Reads arrived that no round sent so far can confirm.</summary>
    public bool RoundNeeded { get; private set; }

    // The highest round a quorum has answered.
    private ulong _confirmed;

    /// <summary>
    /// A round should be sent now: reads need one and the last one sent has been answered. (A round whose heartbeats
    /// or answers are lost is answered through the periodic heartbeats, which carry the latest round number.)
    /// </summary>
    public bool RoundDue => RoundNeeded && !RoundInFlight;

    /// <summary>A round has been sent that a quorum has not answered yet.</summary>
    public bool RoundInFlight => _confirmed < Round;

    public int Count => _confirming.Count + _beforeFirstCommit.Count;

    /// <summary>A read that arrived before this leader committed an entry of its term: it waits until it has (§6.4 step 1).</summary>
    public void Defer(ulong requestId, string origin) => _beforeFirstCommit.Add((requestId, origin));

    public List<(ulong RequestId, string Origin)> TakeDeferred()
    {
        var list = new List<(ulong, string)>(_beforeFirstCommit);
        _beforeFirstCommit.Clear();
        return list;
    }

    public void Add(ulong requestId, string origin, ulong commitIndex)
    {
        _confirming.Enqueue(new PendingRead(requestId, origin, commitIndex, Round + 1));
        RoundNeeded = true;
    }

    /// <summary>Starts the next round; the caller broadcasts heartbeats carrying the returned number.</summary>
    public ulong StartRound()
    {
        RoundNeeded = false;
        return ++Round;
    }

    /// <summary>Records that <paramref name="from"/> answered round <paramref name="round"/> (and so every earlier one).</summary>
    public void Ack(string from, ulong round)
    {
        // A round not sent yet cannot have been answered: a peer echoing one (a bug, a forged message) must not confirm
        // future reads in advance.
        if (round == 0 || round > Round) return;
        if (!_acks.TryGetValue(from, out var prev) || prev < round) _acks[from] = round;
    }

    /// <summary>
    /// Releases every read whose round a quorum of the voters has answered. The leader itself counts as having answered
    /// every round it sent, if it is a voter.
    /// </summary>
    public void Release(string self, MajorityQuorum quorum, List<PendingRead> released)
    {
        // Every round sent is answered, so every read it could release is gone (the rest wait for a round not sent).
        if (!RoundInFlight) return;
        var confirmed = quorum.CommittedIndex((Queue: this, Self: self),
            static (s, v) => v == s.Self ? s.Queue.Round : s.Queue._acks.GetValueOrDefault(v));
        if (confirmed > _confirmed) _confirmed = confirmed;
        while (_confirming.Count > 0 && _confirming.Peek().Round <= confirmed)
            released.Add(_confirming.Dequeue());
    }

    /// <summary>Drops everything (leadership lost); returns what was pending so the callers can be told.</summary>
    public List<(ulong RequestId, string Origin)> Clear()
    {
        var all = new List<(ulong, string)>(_beforeFirstCommit);
        foreach (var r in _confirming) all.Add((r.RequestId, r.Origin));
        _confirming.Clear();
        _beforeFirstCommit.Clear();
        _acks.Clear();
        RoundNeeded = false;
        // Nothing is in flight any more: the next leadership's first reads start a round at once.
        _confirmed = Round;
        return all;
    }
}
