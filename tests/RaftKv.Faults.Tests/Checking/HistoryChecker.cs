using System.Text;
using RaftKv.Faults.Tests.Workload;

namespace RaftKv.Faults.Tests.Checking;

/// <summary>The checker's answer for a whole history: passed, or what is wrong and the operations around it.</summary>
public sealed record CheckReport(bool Passed, int KeysChecked, int OpsChecked, int StatesExplored, string Summary, string Details)
{
    public override string ToString() => Summary + (Details.Length == 0 ? "" : "\n" + Details);
}

/// <summary>
/// Checks a recorded history: every key's reads and writes must be linearizable as a register (writes whose outcome
/// is unknown may have taken effect at any time after their invocation, or never), and no read may see a value no
/// possible write explains. On failure it reports the failing key with the fewest operations, where the search got
/// stuck, and the operations around that point.
/// </summary>
public static class HistoryChecker
{
    public static CheckReport Check(IReadOnlyList<HistoryOp> history, int maxStatesPerKey = 500_000)
    {
        var byId = history.ToDictionary(o => o.Id);
        var (keys, impossible) = KeyHistories.Build(history);
        var opsChecked = keys.Sum(k => k.Ops.Count);
        if (impossible.Count > 0)
        {
            var first = impossible[0];
            var details = new StringBuilder();
            foreach (var i in impossible.Take(10)) details.AppendLine($"  {i.Why}: {i.Read}");
            return new CheckReport(false, keys.Count, opsChecked, 0,
                $"not linearizable: {impossible.Count} read(s) saw a value no possible write explains; first: key {first.Key}: {first.Why}", details.ToString());
        }

        var failures = new List<(KeyHistory Key, SearchResult Result)>();
        var states = 0;
        foreach (var key in keys)
        {
            var result = RegisterSearch.Run(key.Ops, maxStatesPerKey);
            states += result.StatesExplored;
            if (result.Verdict != SearchVerdict.Linearizable) failures.Add((key, result));
        }
        if (failures.Count == 0)
        {
            return new CheckReport(true, keys.Count, opsChecked, states, $"linearizable: {keys.Count} keys, {opsChecked} register operations, {states} states explored", "");
        }

        var (worst, why) = failures.OrderBy(f => f.Key.Ops.Count).First();
        var verdict = why.Verdict == SearchVerdict.Inconclusive
            ? $"inconclusive: key {worst.Key} ran out of its budget of {maxStatesPerKey} states"
            : $"not linearizable: key {worst.Key}";
        var summary = $"{verdict} (failing keys: {string.Join(", ", failures.Select(f => f.Key.Key))}); " +
            $"the longest linearizable prefix holds {why.DeepestPrefix} of its {worst.Ops.Count} operations";
        return new CheckReport(false, keys.Count, opsChecked, states, summary, Around(worst, why.StuckAt, byId));
    }

    /// <summary>The operation the search could not place, the operations concurrent with it and the writes just before.</summary>
    private static string Around(KeyHistory key, int stuckAt, Dictionary<int, HistoryOp> byId)
    {
        if (stuckAt < 0) return "";
        var stuck = key.Ops[stuckAt];
        var sb = new StringBuilder();
        sb.AppendLine($"  could not place: {byId[stuck.HistoryId]}");
        var concurrent = key.Ops.Where(o => o != stuck && o.Call <= stuck.Return && o.Return >= stuck.Call).Take(20).ToList();
        foreach (var o in concurrent) sb.AppendLine($"  concurrent:      {byId[o.HistoryId]}");
        var before = key.Ops.Where(o => o.IsWrite && o.Return < stuck.Call).OrderByDescending(o => o.Return).Take(3).Reverse();
        foreach (var o in before) sb.AppendLine($"  earlier write:   {byId[o.HistoryId]}");
        return sb.ToString();
    }
}
