namespace RaftKv.Faults.Tests.Checking;

/// <summary>What a search of one key's history found.</summary>
internal enum SearchVerdict
{
    Linearizable,
    NotLinearizable,

    /// <summary>The state budget ran out first: neither proven nor refuted (reported as a failure, never as a pass).</summary>
    Inconclusive,
}

/// <summary>The verdict, how far the search got, and where it got stuck (an index into the key's ops).</summary>
internal readonly record struct SearchResult(SearchVerdict Verdict, int StatesExplored, int DeepestPrefix, int StuckAt);

/// <summary>
/// Wing and Gong's linearizability search for a single register, with Lowe's just-in-time refinement and memoisation
/// of (set of linearized operations, register value): the search walks the history's calls and returns in time order,
/// linearizes a pending call when the register allows it, and backtracks when it meets the return of an operation it
/// has not linearized. A (set, value) pair already explored cannot lead anywhere new, so it is never explored twice;
/// with a handful of concurrent clients this keeps a history of thousands of operations to a few states per operation.
/// </summary>
internal static class RegisterSearch
{
    /// <summary>Searches <paramref name="ops"/>; gives up as <see cref="SearchVerdict.Inconclusive"/> beyond <paramref name="maxStates"/> memoised states.</summary>
    public static SearchResult Run(IReadOnlyList<RegisterOp> ops, int maxStates = 500_000)
    {
        var n = ops.Count;
        if (n == 0) return new SearchResult(SearchVerdict.Linearizable, 0, 0, -1);

        // Entries 0..2n-1 are the calls and returns; head and tail are sentinels of a doubly linked list in time order.
        var head = 2 * n;
        var tail = 2 * n + 1;
        var order = new int[2 * n];
        for (var i = 0; i < 2 * n; i++) order[i] = i;
        // Entry 2i is op i's call, 2i+1 its return. At equal times calls come first: touching operations count as
        // concurrent, the permissive reading of a clock that cannot order them.
        Array.Sort(order, (a, b) =>
        {
            var ta = a % 2 == 0 ? ops[a / 2].Call : ops[a / 2].Return;
            var tb = b % 2 == 0 ? ops[b / 2].Call : ops[b / 2].Return;
            var c = ta.CompareTo(tb);
            if (c != 0) return c;
            c = (a % 2).CompareTo(b % 2);
            return c != 0 ? c : a.CompareTo(b);
        });
        var next = new int[2 * n + 2];
        var prev = new int[2 * n + 2];
        var last = head;
        foreach (var e in order)
        {
            next[last] = e;
            prev[e] = last;
            last = e;
        }
        next[last] = tail;
        prev[tail] = last;

        // Zobrist keys make the memo's hash incremental; equality still compares the whole set, so no collision can hide a state.
        var random = new Random(12345);
        var zobrist = new ulong[n];
        for (var i = 0; i < n; i++) zobrist[i] = (ulong)random.NextInt64() ^ ((ulong)random.NextInt64() << 32);
        var linearized = new ulong[(n + 63) / 64];
        ulong setHash = 0;
        var memo = new HashSet<MemoKey>(new MemoKeyComparer());

        var stackEntry = new int[n];
        var stackState = new int[n];
        var depth = 0;
        var state = -1; // the register starts missing
        var deepest = 0;
        var stuckAt = next[head] / 2;

        var entry = next[head];
        while (next[head] != tail)
        {
            if (entry % 2 == 0)
            {
                var opIndex = entry / 2;
                var op = ops[opIndex];
                var allowed = op.IsWrite || op.Writes == state;
                if (allowed)
                {
                    var newState = op.IsWrite ? opIndex : state;
                    linearized[opIndex >> 6] |= 1UL << (opIndex & 63);
                    setHash ^= zobrist[opIndex];
                    if (memo.Add(new MemoKey(setHash ^ (ulong)(uint)newState * 0x9E3779B97F4A7C15UL, newState, linearized)))
                    {
                        if (memo.Count > maxStates) return new SearchResult(SearchVerdict.Inconclusive, memo.Count, deepest, stuckAt);
                        stackEntry[depth] = entry;
                        stackState[depth] = state;
                        depth++;
                        state = newState;
                        Lift(entry);
                        if (depth > deepest)
                        {
                            deepest = depth;
                            stuckAt = next[head] == tail ? -1 : next[head] / 2;
                        }
                        entry = next[head];
                        continue;
                    }
                    linearized[opIndex >> 6] &= ~(1UL << (opIndex & 63));
                    setHash ^= zobrist[opIndex];
                }
                entry = next[entry];
            }
            else
            {
                // The return of an operation not yet linearized: everything before it has been tried in this prefix.
                if (depth == 0) return new SearchResult(SearchVerdict.NotLinearizable, memo.Count, deepest, stuckAt);
                depth--;
                var e = stackEntry[depth];
                state = stackState[depth];
                var opIndex = e / 2;
                linearized[opIndex >> 6] &= ~(1UL << (opIndex & 63));
                setHash ^= zobrist[opIndex];
                Unlift(e);
                entry = next[e];
            }
        }
        return new SearchResult(SearchVerdict.Linearizable, memo.Count, n, -1);

        // Removes a call and its return from the list; Unlift restores them in the reverse order (dancing links).
        void Lift(int call)
        {
            Remove(call);
            Remove(call + 1);
        }

        void Unlift(int call)
        {
            Restore(call + 1);
            Restore(call);
        }

        void Remove(int x)
        {
            next[prev[x]] = next[x];
            prev[next[x]] = prev[x];
        }

        void Restore(int x)
        {
            next[prev[x]] = x;
            prev[next[x]] = x;
        }
    }

    /// <summary>A memoised state: the set of linearized operations (copied) and the register's value.</summary>
    private sealed class MemoKey
    {
        public MemoKey(ulong hash, int state, ulong[] set)
        {
            Hash = hash;
            State = state;
            Set = (ulong[])set.Clone();
        }

        public ulong Hash { get; }
        public int State { get; }
        public ulong[] Set { get; }
    }

    private sealed class MemoKeyComparer : IEqualityComparer<MemoKey>
    {
        public bool Equals(MemoKey? x, MemoKey? y) =>
            x is not null && y is not null && x.Hash == y.Hash && x.State == y.State && x.Set.AsSpan().SequenceEqual(y.Set);

        public int GetHashCode(MemoKey k) => (int)(k.Hash ^ (k.Hash >> 32));
    }
}
