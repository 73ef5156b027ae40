using RaftKv.Raft;

namespace RaftKv.Simulation;

/// <summary>
/// Invariants of the logs, checked as each simulated disk is written: log matching (§5.3) across all nodes, and
/// committed entries that never change.
/// </summary>
internal sealed class LogChecker(Action<string> fail)
{
    private readonly Dictionary<(ulong Index, ulong Term), (ulong Hash, ulong PrevTerm)> _entries = [];
    private readonly Dictionary<ulong, ulong> _committedTerm = [];

    /// <summary>The highest index known committed anywhere, and its term.</summary>
    public ulong MaxCommitted { get; private set; }

    public ulong CommittedTerm(ulong index) => _committedTerm[index];

    public void Fail(string message) => fail(message);

    public static ulong Hash(in Entry e)
    {
        var h = 14695981039346656037UL ^ (ulong)e.Type;
        foreach (var b in e.Data.Span) h = (h ^ b) * 1099511628211UL;
        return h;
    }

    /// <summary>Log matching: entries with the same index and term have the same content and the same predecessor.</summary>
    public void OnAppended(SimDisk disk, in Entry e)
    {
        var prevTerm = e.Index <= 1 ? 0 : disk.Term(e.Index - 1);
        var key = (e.Index, e.Term);
        var value = (Hash(e), prevTerm);
        if (_entries.TryGetValue(key, out var seen))
        {
            if (seen != value) fail($"log matching: {disk.NodeId} holds {e} with prev term {prevTerm}, another node holds it with {seen}");
        }
        else
        {
            _entries[key] = value;
        }
    }

    /// <summary>A committed entry never changes: every node that says it committed an index holds the same term there.</summary>
    public void OnCommitted(SimDisk disk, ulong commit)
    {
        if (commit == 0 || commit < disk.FirstIndex - 1) return;
        var term = disk.Term(commit);
        if (_committedTerm.TryGetValue(commit, out var t))
        {
            if (t != term) fail($"committed entry changed: index {commit} term {t} vs {term} on {disk.NodeId}");
        }
        else
        {
            _committedTerm[commit] = term;
        }
        if (commit > MaxCommitted) MaxCommitted = commit;
    }
}
