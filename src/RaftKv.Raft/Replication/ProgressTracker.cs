using System.Diagnostics.CodeAnalysis;

namespace RaftKv.Raft;

/// <summary>
/// What the core counts quorums from: the configuration in force (and so its <see cref="MajorityQuorum"/>), the
/// leader's progress for each member, and a candidate's votes. Keeping them together means every count is made
/// against the same voters, the ones of <see cref="Config"/>.
/// </summary>
internal sealed class ProgressTracker
{
    private readonly Dictionary<string, Progress> _progress = new(StringComparer.Ordinal);
    private readonly Dictionary<string, bool> _votes = new(StringComparer.Ordinal);
    private readonly int _maxInflightMessages;
    private readonly long _maxInflightBytes;
    private ClusterConfig _config = ClusterConfig.Empty;

    public ProgressTracker(int maxInflightMessages, long maxInflightBytes)
    {
        _maxInflightMessages = maxInflightMessages;
        _maxInflightBytes = maxInflightBytes;
    }

    /// <summary>The configuration in force: the newest one in the log, committed or not.</summary>
    public ClusterConfig Config
    {
        get => _config;
        set
        {
            _config = value;
            Quorum = new MajorityQuorum(value.Voters);
        }
    }

    /// <summary>A majority of <see cref="Config"/>'s voters.</summary>
    public MajorityQuorum Quorum { get; private set; } = new(ClusterConfig.Empty.Voters);

    // Progress: only a leader has any (it tracks every member, removed ones for a while, and itself).

    public bool TryGet(string id, [MaybeNullWhen(false)] out Progress progress) => _progress.TryGetValue(id, out progress);

    public Progress? Find(string id) => _progress.GetValueOrDefault(id);

    public bool Contains(string id) => _progress.ContainsKey(id);

    /// <summary>Starts tracking <paramref name="id"/>, probing from <paramref name="next"/>; a member already tracked is left as it is.</summary>
    public void Add(string id, ulong next)
    {
        if (!_progress.ContainsKey(id)) _progress[id] = new Progress(next, _maxInflightMessages, _maxInflightBytes);
    }

    public void Remove(string id) => _progress.Remove(id);

    public void ClearProgress() => _progress.Clear();

    /// <summary>Enumerates (id, progress) without allocating; the set must not change meanwhile.</summary>
    public Dictionary<string, Progress>.Enumerator GetEnumerator() => _progress.GetEnumerator();

    /// <summary>The highest index a majority of the voters holds (by their match index; members not tracked hold 0).</summary>
    public ulong CommittedIndex() =>
        Quorum.CommittedIndex(_progress, static (progress, id) => progress.TryGetValue(id, out var pr) ? pr.Match : 0);

    /// <summary>
    /// Check-quorum: has a majority of the voters (<paramref name="self"/> included) been heard from since the last
    /// check? Starts the next period: every member but <paramref name="self"/> counts as not heard from again.
    /// </summary>
    public bool QuorumActive(string self)
    {
        var active = Quorum.IsActive((Progress: _progress, Self: self),
            static (s, v) => v == s.Self || (s.Progress.TryGetValue(v, out var pr) && pr.RecentActive));
        foreach (var (id, pr) in _progress) pr.RecentActive = id == self;
        return active;
    }

    // Votes: only a candidate or pre-candidate has any.

    public void ResetVotes() => _votes.Clear();

    /// <summary>Records <paramref name="from"/>'s answer (the first one counts) and tallies the election so far.</summary>
    public VoteOutcome RecordVote(string from, bool granted)
    {
        _votes.TryAdd(from, granted);
        return Quorum.TallyVotes(_votes, static (votes, v) => votes.TryGetValue(v, out var g) ? g : null);
    }
}
