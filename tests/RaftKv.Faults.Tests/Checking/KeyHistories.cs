using RaftKv.Faults.Tests.Workload;

namespace RaftKv.Faults.Tests.Checking;

/// <summary>One key's register operations, and the client operations they came from.</summary>
internal sealed record KeyHistory(string Key, IReadOnlyList<RegisterOp> Ops);

/// <summary>A read that saw a value no write in the history can explain: a violation found before any search.</summary>
internal sealed record ImpossibleRead(string Key, HistoryOp Read, string Why);

/// <summary>
/// Splits a history into one register history per key (a write of several pairs is a write to each of its keys at the
/// same instant; the issue asks for a per-key check), and finds reads no write can explain. Values are unique per
/// write, so a read names the write it saw.
/// </summary>
/// <remarks>
/// A write whose outcome is unknown and whose value no read saw is left out: if some linearization places it, no read
/// falls between it and the next write (none saw its value), so the same order without it is valid too; and an
/// unknown write may never have happened.
/// </remarks>
internal static class KeyHistories
{
    public static (List<KeyHistory> Keys, List<ImpossibleRead> Impossible) Build(IReadOnlyList<HistoryOp> history)
    {
        var keys = new List<KeyHistory>();
        var impossible = new List<ImpossibleRead>();

        // Every value any write carried (whatever its outcome), to say why a read is impossible.
        var writtenAnywhere = new Dictionary<string, List<(string Key, HistoryOp Op)>>();
        foreach (var w in history.Where(o => o.Kind == OpKind.Write))
        {
            foreach (var (k, v) in w.Values)
            {
                if (!writtenAnywhere.TryGetValue(v!, out var list)) writtenAnywhere[v!] = list = [];
                list.Add((k, w));
            }
        }

        var allKeys = history.SelectMany(o => o.Values.Keys).Distinct().Order(StringComparer.Ordinal);
        foreach (var key in allKeys)
        {
            // Writes that may have happened: acknowledged or unknown. A definitely failed write never happened.
            var writes = history.Where(o => o.Kind == OpKind.Write && o.Outcome != OpOutcome.Failed && o.Values.ContainsKey(key)).ToList();
            var reads = history.Where(o => o.Kind == OpKind.Read && o.Outcome == OpOutcome.Ok && o.ReadKey == key).ToList();
            var writeByValue = new Dictionary<string, HistoryOp>();
            foreach (var w in writes)
            {
                // A read names its write by value: two writes of one value to one key would make that ambiguous.
                if (w.Values[key] is not { } v) throw new InvalidDataException($"write #{w.Id} has no value for key {key}");
                if (!writeByValue.TryAdd(v, w)) throw new InvalidDataException($"writes #{writeByValue[v].Id} and #{w.Id} both write {key}={v}: the checker needs unique values per key");
            }

            // The earliest return of a read of each value: a write must take effect before any read sees it.
            var firstSeen = new Dictionary<string, long>();
            var usableReads = new List<HistoryOp>();
            foreach (var r in reads)
            {
                var v = r.Values[key];
                if (v is null)
                {
                    usableReads.Add(r);
                    continue;
                }
                if (!writeByValue.ContainsKey(v))
                {
                    impossible.Add(new ImpossibleRead(key, r, ExplainUnknownValue(key, v, writtenAnywhere)));
                    continue;
                }
                usableReads.Add(r);
                firstSeen[v] = firstSeen.TryGetValue(v, out var t) ? Math.Min(t, r.Complete) : r.Complete;
            }

            var ops = new List<RegisterOp>();
            var indexOfWrite = new Dictionary<string, int>();
            foreach (var w in writes)
            {
                var v = w.Values[key]!;
                long ret;
                if (w.Outcome == OpOutcome.Ok) ret = w.Complete;
                else if (firstSeen.TryGetValue(v, out var seen)) ret = seen;
                else continue; // unknown and never observed: leaving it out changes no read (see the class remarks)
                indexOfWrite[v] = ops.Count;
                ops.Add(new RegisterOp(w.Id, IsWrite: true, Writes: ops.Count, w.Invoke, ret));
            }
            foreach (var r in usableReads)
            {
                var v = r.Values[key];
                ops.Add(new RegisterOp(r.Id, IsWrite: false, Writes: v is null ? -1 : indexOfWrite[v], r.Invoke, r.Complete));
            }
            keys.Add(new KeyHistory(key, ops));
        }
        return (keys, impossible);
    }

    private static string ExplainUnknownValue(string key, string value, Dictionary<string, List<(string Key, HistoryOp Op)>> writtenAnywhere)
    {
        if (!writtenAnywhere.TryGetValue(value, out var sources)) return $"read {key}={value}, a value no client ever wrote";
        var sameKey = sources.FirstOrDefault(s => s.Key == key);
        if (sameKey.Op is null) return $"read {key}={value}, a value written only to key {sources[0].Key} (by #{sources[0].Op.Id})";
        return $"read {key}={value}, the value of write #{sameKey.Op.Id}, which definitely failed ({sameKey.Op.Detail ?? "refused"})";
    }
}
