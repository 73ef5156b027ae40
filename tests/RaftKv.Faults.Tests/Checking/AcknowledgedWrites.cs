using RaftKv.Faults.Tests.Workload;

namespace RaftKv.Faults.Tests.Checking;

/// <summary>
/// "Every acknowledged write is present at the end", where that is decidable: once the cluster has healed, each key's
/// final value must come from a write that no acknowledged write to that key strictly followed in real time. (A later
/// acknowledged write would have overwritten it; unless it was lost.) The linearizability check implies this when the
/// final reads are in the history; this check says it in plain words, per write.
/// </summary>
public static class AcknowledgedWrites
{
    /// <summary>One line per lost write (empty when none); <paramref name="finalValues"/> maps each key to its value after healing (null: missing).</summary>
    public static List<string> FindLost(IReadOnlyList<HistoryOp> history, IReadOnlyDictionary<string, string?> finalValues)
    {
        var problems = new List<string>();
        var writes = history.Where(o => o.Kind == OpKind.Write).ToList();
        foreach (var key in writes.SelectMany(w => w.Values.Keys).Distinct().Order(StringComparer.Ordinal))
        {
            var acknowledged = writes.Where(w => w.Outcome == OpOutcome.Ok && w.Values.ContainsKey(key)).ToList();
            if (!finalValues.TryGetValue(key, out var final))
            {
                if (acknowledged.Count > 0) problems.Add($"key {key}: no final read, so its {acknowledged.Count} acknowledged write(s) were not verified");
                continue;
            }
            if (final is null)
            {
                foreach (var w in acknowledged) problems.Add($"key {key} is missing at the end, but write {w} was acknowledged");
                continue;
            }
            var source = writes.FirstOrDefault(w => w.Values.TryGetValue(key, out var v) && v == final);
            if (source is null)
            {
                problems.Add($"key {key} ends as {final}, a value no client wrote to it");
                continue;
            }
            if (source.Outcome == OpOutcome.Failed)
            {
                problems.Add($"key {key} ends as {final}, the value of write {source}, which definitely failed");
                continue;
            }
            if (source.Outcome != OpOutcome.Ok) continue; // an unknown write may have taken effect as late as the end
            foreach (var w in acknowledged.Where(w => w.Invoke > source.Complete))
            {
                problems.Add($"key {key} ends as {final} from {source}, but the later write {w} was acknowledged: it was lost");
            }
        }
        return problems;
    }
}
