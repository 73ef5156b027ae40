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
    // Several proposals may wait at one index: a node that led in two terms can have proposed at the same index in
    // each. Only the entry that commits there decides between them; a newer proposal at the index proves nothing
    // about an older one, which another node may still hold and get committed.
    private readonly SortedDictionary<ulong, List<(ulong Term, T Token)>> _pending = [];
    private ulong _lastAppliedTerm;

    /// <summary>Proposals waiting.</summary>
    public int Count { get; private set; }

    /// <summary>Tracks a proposal the core accepted at (index, term).</summary>
    public void Add(ulong index, ulong term, T token)
    {
        if (!_pending.TryGetValue(index, out var list)) _pending[index] = list = new List<(ulong, T)>(1);
        list.Add((term, token));
        Count++;
    }

    /// <summary>Call for every entry the state machine applies, in order.</summary>
    public void OnApplied(ulong index, ulong term, Action<T, ProposalOutcome> resolve)
    {
        if (Count == 0)
        {
            _lastAppliedTerm = term;
            return;
        }
        while (_pending.Count > 0)
        {
            var (at, list) = First();
            if (at > index) break;
            Remove(at, list);
            foreach (var (t, token) in list)
            {
                // Below the applied index means skipped over (a snapshot): unknown. At it, the entry's term decides.
                var outcome = at < index ? ProposalOutcome.Unknown : t == term ? ProposalOutcome.Applied : ProposalOutcome.Superseded;
                resolve(token, outcome);
            }
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
            var (at, list) = First();
            if (at > index) break;
            Remove(at, list);
            foreach (var (_, token) in list) resolve(token, ProposalOutcome.Unknown);
        }
        _lastAppliedTerm = Math.Max(_lastAppliedTerm, term);
        DropOlderTerms(term, resolve);
    }

    /// <summary>Resolves everything as <see cref="ProposalOutcome.Unknown"/> (shutdown, crash).</summary>
    public void Clear(Action<T, ProposalOutcome> resolve)
    {
        foreach (var list in _pending.Values)
        {
            foreach (var (_, token) in list) resolve(token, ProposalOutcome.Unknown);
        }
        _pending.Clear();
        Count = 0;
    }

    private (ulong Index, List<(ulong Term, T Token)> List) First()
    {
        using var e = _pending.GetEnumerator();
        e.MoveNext();
        return (e.Current.Key, e.Current.Value);
    }

    private void Remove(ulong index, List<(ulong Term, T Token)> list)
    {
        _pending.Remove(index);
        Count -= list.Count;
    }

    private void DropOlderTerms(ulong term, Action<T, ProposalOutcome> resolve)
    {
        List<ulong>? emptied = null;
        foreach (var (index, list) in _pending)
        {
            for (var i = list.Count - 1; i >= 0; i--)
            {
                if (list[i].Term >= term) continue;
                resolve(list[i].Token, ProposalOutcome.Superseded);
                list.RemoveAt(i);
                Count--;
            }
            if (list.Count == 0) (emptied ??= []).Add(index);
        }
        if (emptied is null) return;
        foreach (var index in emptied) _pending.Remove(index);
    }
}
