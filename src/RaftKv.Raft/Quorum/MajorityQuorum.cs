using System.Collections.Immutable;

namespace RaftKv.Raft;

/// <summary>Where an election stands once the votes received so far are counted.</summary>
internal enum VoteOutcome
{
    /// <summary>Neither a majority of grants nor of rejections yet: keep waiting.</summary>
    Pending,
    /// <summary>A majority of the voters granted the vote.</summary>
    Won,
    /// <summary>So many voters rejected that a majority can no longer be reached.</summary>
    Lost,
}

/// <summary>
/// The quorum rules of one configuration's voters: a majority of them. Every count the core makes (what is committed,
/// who won an election, whether a leader still hears from a quorum, which read rounds are confirmed) goes through here,
/// so the arithmetic is written, and tested, once. Non-voters are not in the set and never count.
/// </summary>
/// <remarks>
/// Configurations change one server at a time (thesis §4.1), so there is no joint configuration to count: any two
/// majorities of consecutive configurations overlap. The callbacks take a state argument so callers can pass static
/// lambdas: the commit path counts on every acknowledgement and must not allocate.
/// </remarks>
internal readonly struct MajorityQuorum
{
    // Larger sets sort on the heap; no real cluster comes near.
    private const int StackLimit = 64;

    private readonly ImmutableArray<string> _voters;

    /// <summary>A quorum over <paramref name="voters"/> (ids, each once).</summary>
    public MajorityQuorum(ImmutableArray<string> voters) => _voters = voters.IsDefault ? ImmutableArray<string>.Empty : voters;

    /// <summary>The voters.</summary>
    public ImmutableArray<string> Voters => _voters.IsDefault ? ImmutableArray<string>.Empty : _voters;

    /// <summary>How many voters make a majority (1 for an empty set, which can therefore never reach it).</summary>
    public int Size => Voters.Length / 2 + 1;

    /// <summary>
    /// The highest index that a majority of the voters has reached, where <paramref name="indexOf"/> gives each voter's
    /// index (its match index, or the last read round it answered). 0 when there are no voters.
    /// </summary>
    public ulong CommittedIndex<TState>(TState state, Func<TState, string, ulong> indexOf)
    {
        var voters = Voters;
        if (voters.Length == 0) return 0;
        Span<ulong> indexes = voters.Length <= StackLimit ? stackalloc ulong[voters.Length] : new ulong[voters.Length];
        for (var i = 0; i < voters.Length; i++) indexes[i] = indexOf(state, voters[i]);
        indexes.Sort();
        // Ascending order: the Size-th highest is held by Size voters, itself included.
        return indexes[voters.Length - Size];
    }

    /// <summary>
    /// Counts an election: <paramref name="voteOf"/> gives each voter's answer (true granted, false rejected, null not
    /// heard from). Answers from anyone outside the voters are not asked for.
    /// </summary>
    public VoteOutcome TallyVotes<TState>(TState state, Func<TState, string, bool?> voteOf)
    {
        var voters = Voters;
        int granted = 0, rejected = 0;
        foreach (var v in voters)
        {
            switch (voteOf(state, v))
            {
                case true: granted++; break;
                case false: rejected++; break;
            }
        }
        if (granted >= Size) return VoteOutcome.Won;
        if (voters.Length - rejected < Size) return VoteOutcome.Lost;
        return VoteOutcome.Pending;
    }

    /// <summary>True when at least a majority of the voters satisfy <paramref name="isActive"/>.</summary>
    public bool IsActive<TState>(TState state, Func<TState, string, bool> isActive)
    {
        var active = 0;
        foreach (var v in Voters)
        {
            if (isActive(state, v)) active++;
        }
        return active >= Size;
    }

    /// <inheritdoc />
    public override string ToString() => $"majority of [{string.Join(", ", Voters)}]";
}
