using System.Globalization;
using System.Runtime.InteropServices;
using RaftKv.Faults.Tests.Checking;
using RaftKv.Faults.Tests.Faults;
using RaftKv.Faults.Tests.Workload;

namespace RaftKv.Faults.Tests;

/// <summary>
/// The console entry point (the test host does not use it):
/// <code>
/// soak [--schedules N] [--seed S] [--seconds D] [--nodes N] [--faults kind,kind|all] [--keep]
/// check &lt;history.json&gt;
/// </code>
/// soak runs schedules S, S+1, ... one after another and stops at the first failure (exit 1), printing its seed and
/// history file; Ctrl-C (or SIGTERM) stops it after the schedule under way, whose processes it kills first.
/// check runs the checkers again on a kept history.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        try
        {
            return args.FirstOrDefault() switch
            {
                "soak" => await SoakAsync(args[1..]),
                "check" when args.Length == 2 => Check(args[1]),
                _ => Usage(),
            };
        }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine(e.Message);
            return Usage();
        }
        catch (Exception e) when (e is IOException or InvalidDataException or System.Text.Json.JsonException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"cannot check that history: {e.Message}");
            return 2;
        }
    }

    private static int Usage()
    {
        Console.Error.WriteLine("usage: soak [--schedules N] [--seed S] [--seconds D] [--nodes N] [--faults kind,kind|all] [--keep]");
        Console.Error.WriteLine("       check <history.json>");
        Console.Error.WriteLine($"fault kinds: {string.Join(", ", Enum.GetNames<FaultKind>())} (default: all but {FaultKind.WipeAndRejoin})");
        return 2;
    }

    private static async Task<int> SoakAsync(string[] args)
    {
        var schedules = 10;
        var seed = Environment.TickCount & 0xFFFF;
        var seconds = 20;
        var nodes = 5;
        var keep = false;
        IReadOnlyList<FaultKind> faults = FaultSchedule.Standard;
        for (var i = 0; i < args.Length; i++)
        {
            string Value() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int Number() => int.TryParse(Value(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) && n > 0 ? n : throw new ArgumentException($"{args[i - 1]} needs a positive whole number");
            switch (args[i])
            {
                case "--schedules": schedules = Number(); break;
                case "--seed": seed = Number(); break;
                case "--seconds": seconds = Number(); break;
                case "--nodes": nodes = Number(); break;
                case "--keep": keep = true; break;
                case "--faults": faults = ParseFaults(Value()); break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        if (nodes < 3) throw new ArgumentException("--nodes must be at least 3 (a partition needs a majority to survive)");

        // A signal ends the soak between schedules, so no raftkvd process outlives it.
        using var stopRequested = new CancellationTokenSource();
        void Stop(PosixSignalContext context)
        {
            context.Cancel = true;
            stopRequested.Cancel();
            Console.WriteLine("stopping after the schedule under way");
        }
        using var onInterrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);
        using var onTerminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);

        var totals = new Dictionary<FaultKind, int>();
        long operations = 0, checkedOps = 0;
        var started = DateTime.UtcNow;
        var done = 0;
        for (var n = 0; n < schedules && !stopRequested.IsCancellationRequested; n++)
        {
            var result = await FaultRun.RunAsync(new FaultRunOptions(seed + n, TimeSpan.FromSeconds(seconds), faults, nodes) { KeepHistory = keep }, Console.Out);
            Console.WriteLine(result);
            done++;
            operations += result.Operations;
            checkedOps += result.OpsChecked;
            foreach (var (k, c) in result.Faults) totals[k] = totals.GetValueOrDefault(k) + c;
            if (!result.Passed)
            {
                Console.WriteLine($"VIOLATION at seed {result.Seed} (schedule {n + 1} of {schedules}); replay: soak --seed {result.Seed} --schedules 1 --seconds {seconds} --nodes {nodes} --faults {string.Join(",", faults)}");
                return 1;
            }
        }
        Console.WriteLine($"soak: {done} schedules passed (seeds {seed}..{seed + done - 1}) in {(DateTime.UtcNow - started).TotalMinutes:0.0} min; " +
            $"{operations} operations, {checkedOps} register operations checked; faults: {string.Join(", ", totals.Select(t => $"{t.Key} x{t.Value}"))}");
        return 0;
    }

    private static IReadOnlyList<FaultKind> ParseFaults(string text)
    {
        if (text == "all") return Enum.GetValues<FaultKind>();
        return text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(s => Enum.TryParse<FaultKind>(s, ignoreCase: true, out var k) ? k : throw new ArgumentException($"unknown fault kind {s}"))
            .ToList();
    }

    private static int Check(string path)
    {
        var file = History.Load(path);
        var report = HistoryChecker.Check(file.Ops);
        Console.WriteLine($"seed {file.Seed}: {file.Description}");
        foreach (var e in file.Events) Console.WriteLine($"  {e.At / 1000.0,10:0.0} ms  {e.What}");
        Console.WriteLine(report);
        // The final reads (made after healing) give each key's last value.
        var final = file.Ops.Where(o => o.Client == ClientWorker.FinalReader && o.Kind == OpKind.Read && o.Outcome == OpOutcome.Ok)
            .GroupBy(o => o.ReadKey).ToDictionary(g => g.Key, g => g.Last().Values[g.Key]);
        var lost = final.Count == 0 ? ["the history has no final reads: the run stopped before healing"] : AcknowledgedWrites.FindLost(file.Ops, final);
        foreach (var l in lost) Console.WriteLine(l);
        return report.Passed && lost.Count == 0 ? 0 : 1;
    }
}
