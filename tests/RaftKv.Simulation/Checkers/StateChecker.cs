using RaftKv.Node.StateMachine;
using RaftKv.Raft;

namespace RaftKv.Simulation;

/// <summary>
/// Invariants of the state machines and of what clients were told: no two nodes apply different entries at one
/// index, entries apply in order, every read sees what it must, an acknowledged write was applied and stays, a write
/// reported as not applied never is.
/// </summary>
internal sealed class StateChecker(Action<string> fail)
{
    private readonly Dictionary<ulong, (ulong Term, ulong Hash)> _applied = [];
    private readonly Dictionary<string, List<(ulong Index, string Value)>> _history = new(StringComparer.Ordinal);
    private readonly HashSet<string> _notAppliedValues = new(StringComparer.Ordinal);
    private readonly List<(string Key, string? Value)> _effects = [];

    /// <summary>The highest index applied anywhere.</summary>
    public ulong MaxApplied { get; private set; }

    /// <summary>The highest index of a write whose client was told it was applied.</summary>
    public ulong MaxAckedIndex { get; private set; }

    /// <summary>Entry <paramref name="e"/> is applied on <paramref name="node"/>, whose state machine was at <paramref name="applied"/>.</summary>
    public void OnApply(string node, ulong applied, in Entry e)
    {
        if (e.Index != applied + 1) fail($"{node} applies {e.Index} after {applied}");
        var h = LogChecker.Hash(e);
        if (_applied.TryGetValue(e.Index, out var seen))
        {
            if (seen != (e.Term, h)) fail($"{node} applied {e} but another node applied term {seen.Term} at that index");
            return;
        }
        _applied[e.Index] = (e.Term, h);
        MaxApplied = Math.Max(MaxApplied, e.Index);
        if (e.Type != EntryType.Normal || e.Data.IsEmpty) return;
        _effects.Clear();
        KvCommand.Decode(e.Data.Span, _effects);
        foreach (var (k, v) in _effects)
        {
            if (v is null) continue;
            if (_notAppliedValues.Contains(v)) fail($"{node} applied {k}={v}, a write its client was told was not applied");
            if (!_history.TryGetValue(k, out var list)) _history[k] = list = [];
            list.Add((e.Index, v));
        }
    }

    /// <summary>A snapshot restored on a running node may not move its state back.</summary>
    public void OnRestoreBack(string node, ulong applied, ulong index) => fail($"{node} snapshot {index} would move applied back from {applied}");

    /// <summary>A snapshot restored at <paramref name="index"/> holds the committed history up to that index.</summary>
    public void OnRestored(string node, KvStateMachine state, ulong index)
    {
        foreach (var key in _history.Keys)
        {
            var got = state.Get(key);
            var expected = ExpectedValue(key, index);
            if (got != expected) fail($"{node} restored snapshot {index} holding {key}={got}, the committed history says {expected}");
        }
    }

    /// <summary>A read of the state machine itself: it must hold the committed history up to its applied index.</summary>
    public void OnGet(string node, ulong applied, string key, string? got)
    {
        var expected = ExpectedValue(key, applied);
        if (got != expected) fail($"{node} read {key}={got} at applied {applied}, log says {expected}");
    }

    /// <summary>A write's client was told it was applied at <paramref name="index"/>.</summary>
    public void OnAcknowledged(WriteOp op, ulong index)
    {
        var found = _history.TryGetValue(op.Key, out var list) ? list.FindLast(h => h.Value == op.Value).Index : 0;
        if (found == 0) fail($"write {op} acknowledged but never applied");
        if (found != index) fail($"write {op} acknowledged at index {index} but applied at {found}");
        MaxAckedIndex = Math.Max(MaxAckedIndex, found);
    }

    /// <summary>A write's client was told it was not applied: it is not, and never will be.</summary>
    public void OnNotApplied(WriteOp op)
    {
        if (_history.TryGetValue(op.Key, out var h) && h.Exists(x => x.Value == op.Value)) fail($"write {op} reported not applied but it was applied");
        _notAppliedValues.Add(op.Value);
    }

    /// <summary>
    /// Linearizability of a read: it returned the value of some state between the last write acknowledged before it
    /// began and the newest state applied anywhere now.
    /// </summary>
    public void OnRead(string node, ReadOp op, string? got)
    {
        if (ExpectedValue(op.Key, op.MinIndex) == got) return;
        if (_history.TryGetValue(op.Key, out var list) && list.Exists(h => h.Index > op.MinIndex && h.Index <= MaxApplied && h.Value == got)) return;
        fail($"{node} read {op} returned {got ?? "nothing"}, which no state since index {op.MinIndex} held");
    }

    /// <summary>
    /// Once recovered, every acknowledged write is in the leader's state machine, and every live node's state machine
    /// is exactly the committed history up to its applied index (a node that lost its storage rebuilt it).
    /// </summary>
    public void CheckFinalState(SimNode leader, IEnumerable<SimNode> alive)
    {
        if (leader.State!.AppliedIndex < MaxAckedIndex) fail($"leader {leader.Id} applied {leader.State.AppliedIndex}, below acknowledged write index {MaxAckedIndex}");
        foreach (var n in alive)
        {
            var applied = n.State!.AppliedIndex;
            foreach (var key in _history.Keys)
            {
                var got = n.State.Inner.Get(key);
                var expected = ExpectedValue(key, applied);
                if (got != expected) fail($"{n.Id} (life {n.Lives}) holds {key}={got} at applied {applied}, the committed history says {expected}");
            }
            if (n.State.Inner.Count > _history.Count) fail($"{n.Id} holds keys that were never committed");
        }
    }

    private string? ExpectedValue(string key, ulong applied)
    {
        if (!_history.TryGetValue(key, out var list)) return null;
        for (var i = list.Count - 1; i >= 0; i--)
        {
            if (list[i].Index <= applied) return list[i].Value;
        }
        return null;
    }
}

/// <summary>The real key-value state machine, with every apply and read shown to the <see cref="StateChecker"/>.</summary>
internal sealed class CheckedStateMachine(string node, KvStateMachine inner, StateChecker checker) : IStateMachine
{
    public KvStateMachine Inner => inner;

    public ulong AppliedIndex => inner.AppliedIndex;

    public int Count => inner.Count;

    public void Apply(in Entry entry)
    {
        checker.OnApply(node, inner.AppliedIndex, entry);
        inner.Apply(entry);
    }

    public string? Get(string key)
    {
        var got = inner.Get(key);
        checker.OnGet(node, inner.AppliedIndex, key, got);
        return got;
    }

    public IStateSnapshot TakeSnapshot() => inner.TakeSnapshot();

    public void Restore(Stream input, ulong index)
    {
        if (index < inner.AppliedIndex) checker.OnRestoreBack(node, inner.AppliedIndex, index);
        inner.Restore(input, index);
        checker.OnRestored(node, inner, index);
    }
}
