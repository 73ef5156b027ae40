namespace RaftKv.Raft;

/// <summary>What became of an accepted proposal.</summary>
public enum ProposalOutcome
{
    /// <summary>Its entry committed and was applied.</summary>
    Applied,

    /// <summary>Another term's entry committed at its index (or a newer term's entry committed before it): it will never apply.</summary>
    Superseded,

    /// <summary>The node lost track of it (a snapshot replaced the log around it): it may or may not have applied.</summary>
    Unknown,
}

/// <summary>
/// Matches proposals accepted at (index, term) with what the state machine later applies, so a runtime can answer
/// each waiting client exactly once. Relies on log matching: if the entry committed at a proposal's index has
/// another term, or an entry of a newer term commits at a lower index, the proposal can never commit.
/// </summary>
/// <typeparam name="T">The caller's token for a waiting request.</typeparam>
public sealed class ProposalTracker<T>
{
    private readonly SortedDictionary<ulong, (ulong Term, T Token)> _pending = [];
    private ulong _lastAppliedTerm;

    /// <summary>Proposals waiting.</summary>
    public int Count => _pending.Count;

    /// <summary>Tracks a proposal the core accepted at (index, term). A newer proposal at the same index replaces the older, which is superseded.</summary>
    public void Add(ulong index, ulong term, T token, Action<T, ProposalOutcome> resolve)
    {
        if (_pending.Remove(index, out var old)) resolve(old.Token, ProposalOutcome.Superseded);
        _pending[index] = (term, token);
    }

    /// <summary>Call for every entry the state machine applies, in order.</summary>
    public void OnApplied(ulong index, ulong term, Action<T, ProposalOutcome> resolve)
    {
        if (_pending.Count == 0)
        {
            _lastAppliedTerm = term;
            return;
        }
        while (_pending.Count > 0)
        {
            var first = _pending.First();
            if (first.Key > index) break;
            _pending.Remove(first.Key);
            var outcome = first.Key < index ? ProposalOutcome.Unknown
                : first.Value.Term == term ? ProposalOutcome.Applied
                : ProposalOutcome.Superseded;
            resolve(first.Value.Token, outcome);
        }
        if (term > _lastAppliedTerm)
        {
            // Everything after this entry in any future committed log has a term >= this one.
            _lastAppliedTerm = term;
            DropOlderTerms(term, resolve);
        }
    }

    /// <summary>Call when the state machine was replaced by a snapshot ending at (index, term).</summary>
    public void OnSnapshotRestored(ulong index, ulong term, Action<T, ProposalOutcome> resolve)
    {
        while (_pending.Count > 0)
        {
            var first = _pending.First();
            if (first.Key > index) break;
            _pending.Remove(first.Key);
            resolve(first.Value.Token, ProposalOutcome.Unknown);
        }
        _lastAppliedTerm = Math.Max(_lastAppliedTerm, term);
        DropOlderTerms(term, resolve);
    }

    /// <summary>Resolves everything as <see cref="ProposalOutcome.Unknown"/> (shutdown, crash).</summary>
    public void Clear(Action<T, ProposalOutcome> resolve)
    {
        foreach (var (_, v) in _pending) resolve(v.Token, ProposalOutcome.Unknown);
        _pending.Clear();
    }

    private void DropOlderTerms(ulong term, Action<T, ProposalOutcome> resolve)
    {
        List<ulong>? dead = null;
        foreach (var (i, v) in _pending)
        {
            if (v.Term < term) (dead ??= []).Add(i);
        }
        if (dead is null) return;
        foreach (var i in dead)
        {
            var v = _pending[i];
            _pending.Remove(i);
            resolve(v.Token, ProposalOutcome.Superseded);
        }
    }
}
