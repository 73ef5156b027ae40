using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using RaftKv.Client;
using RaftKv.Load;

namespace RaftKv.Cli;

/// <summary>
/// <c>raftkv bench</c>: drives a cluster (raftkv, or etcd for comparison) with concurrent writes and reads and prints
/// throughput, latency percentiles and errors. The engine is <see cref="LoadRunner"/>, shared with the server benchmark.
/// </summary>
internal static class BenchCommand
{
    /// <summary>etcd's usual client address, used for <c>--target etcd</c> when <c>--endpoints</c> is not given.</summary>
    public const string EtcdDefaultEndpoint = "localhost:2379";

    public static void Add(RootCommand root, Func<ParseResult, CliContext> context)
    {
        var clients = new Option<int>("--clients", "-c")
        {
            Description = "Concurrent workers, each with one request in flight on its own HTTP connection",
            DefaultValueFactory = _ => 16,
            HelpName = "N",
        };
        clients.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > 10_000)
            {
                r.AddError("--clients must be between 1 and 10000");
            }
        });
        var duration = new Option<string?>("--duration", "-d")
        {
            Description = "How long to run (e.g. 30s, 2m) [default: 10s unless --requests is given]",
            HelpName = "duration",
        };
        duration.Validators.Add(r => CliApp.CheckDuration(r, "--duration"));
        var requests = new Option<long?>("--requests", "-n")
        {
            Description = "Total requests to send, over all clients (instead of --duration)",
            HelpName = "N",
        };
        requests.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<long?>() is < 1)
            {
                r.AddError("--requests must be at least 1");
            }
        });
        var valueSize = new Option<int>("--value-size")
        {
            Description = "Bytes per written value",
            DefaultValueFactory = _ => 100,
            HelpName = "BYTES",
        };
        valueSize.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 0 or > 64 * 1024 * 1024)
            {
                r.AddError("--value-size must be between 0 and 67108864");
            }
        });
        var keys = new Option<long>("--keys")
        {
            Description = "Key space: writes and reads pick keys uniformly among this many",
            DefaultValueFactory = _ => 100_000,
            HelpName = "N",
        };
        keys.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<long>() < 1)
            {
                r.AddError("--keys must be at least 1");
            }
        });
        var distinct = new Option<bool>("--distinct")
        {
            Description = "Every write a new key (reads pick among the keys this run wrote)",
        };
        var mix = new Option<string>("--mix")
        {
            Description = "Writes:reads in percent, e.g. 100:0, 50:50, 0:100",
            DefaultValueFactory = _ => "100:0",
            HelpName = "W:R",
        };
        mix.Validators.Add(r =>
        {
            if (!TryParseMix(r.GetValueOrDefault<string>(), out _))
            {
                r.AddError($"--mix: \"{r.GetValueOrDefault<string>()}\" is not W:R with W + R = 100 (e.g. 100:0, 50:50, 0:100)");
            }
        });
        var level = new Option<string>("--level", "-l")
        {
            Description = "Read consistency: none, weak, linearizable or strong (etcd: none and weak are serializable ranges)",
            DefaultValueFactory = _ => "linearizable",
        };
        level.AcceptOnlyFromAmong("none", "weak", "linearizable", "strong");
        var target = new Option<string>("--target")
        {
            Description = $"What to load: raftkv, or etcd through its v3 JSON gateway (--endpoints default: {EtcdDefaultEndpoint})",
            DefaultValueFactory = _ => "raftkv",
        };
        target.AcceptOnlyFromAmong("raftkv", "etcd");

        var command = new Command("bench",
            "Load the cluster with concurrent writes and reads, sent straight to the leader; print throughput, latency percentiles "
            + "and errors (counted, never retried; --timeout limits each request)")
        {
            clients, duration, requests, valueSize, keys, distinct, mix, level, target,
        };
        command.SetAction(async (r, ct) =>
        {
            var c = context(r);
            if (r.GetValue(duration) is not null && r.GetValue(requests) is not null)
            {
                throw new UsageException("give --duration or --requests, not both");
            }
            Durations.TryParse(r.GetValue(duration) ?? "10s", out var runFor, out _);
            TryParseMix(r.GetRequiredValue(mix), out var writePercent);
            var options = new LoadOptions
            {
                Clients = r.GetValue(clients),
                Duration = runFor,
                Requests = r.GetValue(requests),
                ValueSize = r.GetValue(valueSize),
                Keys = r.GetValue(keys),
                Distinct = r.GetValue(distinct),
                WritePercent = writePercent,
                ReadLevel = ParseLevel(r.GetRequiredValue(level)),
                // Distinct keys are new to this run, and to every earlier one.
                KeyPrefix = r.GetValue(distinct) ? $"bench-{DateTime.UtcNow:yyyyMMddHHmmss}-{Random.Shared.Next(1000):D3}-" : "bench-",
                RequestTimeout = c.Timeout,
                Seed = Random.Shared.Next(),
            };
            var etcd = r.GetRequiredValue(target) == "etcd";
            LoadTarget bench;
            try
            {
                var endpoints = etcd && !c.EndpointsGiven ? [EtcdDefaultEndpoint] : c.Endpoints;
                if (!etcd)
                {
                    // The same endpoint check (and message) as every other command.
                    c.CreateClient().Dispose();
                }
                bench = etcd ? new EtcdLoadTarget(endpoints) : new RaftKvLoadTarget(endpoints);
            }
            catch (ArgumentException e)
            {
                throw new UsageException("--endpoints: " + e.Message.Split(" (Parameter", 2)[0]);
            }
            try
            {
                await bench.PrepareAsync(c.Timeout, ct);
            }
            catch (TimeoutException e)
            {
                await c.Error.WriteLineAsync(CliApp.OneLine(e.Message));
                return ExitCodes.OperationFailed;
            }

            var live = ReferenceEquals(c.Error, Console.Error) && !Console.IsErrorRedirected;
            Action<LoadProgress>? progress = live
                ? p => c.Error.Write(string.Create(CultureInfo.InvariantCulture,
                    $"\r{p.Elapsed.TotalSeconds,6:F0}s  {p.Requests,12:N0} ops  {p.RatePerSecond,10:N0} ops/s  {p.Errors:N0} errors\u001b[K"))
                : null;
            var report = await LoadRunner.RunAsync(bench, options, progress, ct);
            if (live)
            {
                c.Error.Write("\r\u001b[K");
            }
            if (c.Output.Json)
            {
                WriteJson(c.Output, report, r.GetRequiredValue(mix));
            }
            else
            {
                WriteTable(c.Output, report, r.GetRequiredValue(mix));
            }
            if (report.Succeeded == 0)
            {
                await c.Error.WriteLineAsync(report.Requests == 0 ? "no request was sent" : $"no request succeeded ({report.ErrorCount:N0} errors)");
                return ExitCodes.OperationFailed;
            }
            return ExitCodes.Success;
        });
        root.Subcommands.Add(command);
    }

    internal static bool TryParseMix(string? text, out int writePercent)
    {
        writePercent = 0;
        var parts = (text ?? "").Split(':');
        if (parts.Length != 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var w)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var r)
            || w > 100 || r > 100 || w + r != 100)
        {
            return false;
        }
        writePercent = w;
        return true;
    }

    private static ReadLevel ParseLevel(string text) => text switch
    {
        "none" => ReadLevel.None,
        "weak" => ReadLevel.Weak,
        "strong" => ReadLevel.Strong,
        _ => ReadLevel.Linearizable,
    };

    private static string LevelName(ReadLevel level) => level.ToString().ToLowerInvariant();

    /// <summary>Percentiles reported for every kind.</summary>
    public static readonly (string Name, double Percentile)[] Percentiles = [("p50", 50), ("p90", 90), ("p99", 99), ("p99.9", 99.9)];

    private static void WriteTable(Output output, LoadReport report, string mix)
    {
        var o = report.Options;
        var keySpace = o.Distinct ? "distinct keys" : o.Keys.ToString("N0", CultureInfo.InvariantCulture) + " keys";
        var reads = o.WritePercent < 100 ? $", {LevelName(o.ReadLevel)} reads" : "";
        var interrupted = report.Interrupted ? ", INTERRUPTED" : "";
        output.Line(string.Create(CultureInfo.InvariantCulture,
            $"{report.Target} at {report.Endpoint.Authority}: {o.Clients} clients, {report.Elapsed.TotalSeconds:F2}s, {o.ValueSize}-byte values, {keySpace}, mix {mix} (writes:reads){reads}{interrupted}"));
        output.Line("");
        var kinds = new[] { report.Writes, report.Reads }.Where(k => k.Requests > 0).ToList();
        var rows = kinds.Select(k => Row(k.Name, k.Requests, k.ErrorCount, k.OpsPerSecond, k.Latency)).ToList();
        if (kinds.Count > 1)
        {
            rows.Add(Row("total", report.Requests, report.ErrorCount, report.OpsPerSecond, report.Latency));
        }
        output.Table(["KIND", "REQUESTS", "ERRORS", "OPS/S", "P50 MS", "P90 MS", "P99 MS", "P99.9 MS", "MAX MS"], rows);
        foreach (var k in kinds.Where(k => k.Misses > 0))
        {
            output.Line("");
            output.Line(string.Create(CultureInfo.InvariantCulture, $"{k.Misses:N0} of {k.Succeeded:N0} successful {k.Name}s found no such key"));
        }
        if (report.ErrorCount > 0)
        {
            output.Line("");
            output.Line("errors (not retried; latencies cover successes only):");
            foreach (var k in kinds.Where(k => k.ErrorCount > 0))
            {
                output.Line($"  {k.Name}: " + string.Join(", ", k.Errors.Select(e => string.Create(CultureInfo.InvariantCulture,
                    $"{(char.IsAsciiDigit(e.Key[0]) ? "HTTP " + e.Key : e.Key)} x{e.Value:N0}"))));
            }
        }
    }

    private static string[] Row(string name, long requests, long errors, double opsPerSecond, LatencyHistogram latency) =>
    [
        name,
        requests.ToString("N0", CultureInfo.InvariantCulture),
        errors.ToString("N0", CultureInfo.InvariantCulture),
        opsPerSecond.ToString("N0", CultureInfo.InvariantCulture),
        .. Percentiles.Select(p => Ms(latency.Count == 0 ? null : latency.ValueAtPercentile(p.Percentile))),
        Ms(latency.Count == 0 ? null : latency.Max),
    ];

    private static string Ms(long? micros) => micros is { } us ? (us / 1000.0).ToString("F2", CultureInfo.InvariantCulture) : "-";

    private static void WriteJson(Output output, LoadReport report, string mix)
    {
        var o = report.Options;
        output.WriteJson(w =>
        {
            w.WriteStartObject();
            w.WriteString("target", report.Target);
            w.WriteString("endpoint", report.Endpoint.Authority);
            w.WriteNumber("clients", o.Clients);
            w.WriteNumber("duration_s", Math.Round(report.Elapsed.TotalSeconds, 3));
            w.WriteBoolean("interrupted", report.Interrupted);
            w.WriteNumber("value_size", o.ValueSize);
            if (o.Distinct)
            {
                w.WriteNull("keys");
            }
            else
            {
                w.WriteNumber("keys", o.Keys);
            }
            w.WriteBoolean("distinct", o.Distinct);
            w.WriteString("mix", mix);
            w.WriteString("level", LevelName(o.ReadLevel));
            w.WriteNumber("requests", report.Requests);
            w.WriteNumber("succeeded", report.Succeeded);
            w.WriteNumber("errors", report.ErrorCount);
            w.WriteNumber("ops_per_sec", Math.Round(report.OpsPerSecond, 1));
            WriteLatency(w, report.Latency);
            foreach (var k in new[] { report.Writes, report.Reads })
            {
                w.WriteStartObject(k.Name);
                w.WriteNumber("requests", k.Requests);
                w.WriteNumber("succeeded", k.Succeeded);
                w.WriteNumber("misses", k.Misses);
                w.WriteNumber("errors", k.ErrorCount);
                w.WriteStartObject("errors_by_kind");
                foreach (var (kind, count) in k.Errors)
                {
                    w.WriteNumber(kind, count);
                }
                w.WriteEndObject();
                w.WriteNumber("ops_per_sec", Math.Round(k.OpsPerSecond, 1));
                WriteLatency(w, k.Latency);
                w.WriteEndObject();
            }
            w.WriteEndObject();
        });
    }

    private static void WriteLatency(Utf8JsonWriter w, LatencyHistogram latency)
    {
        w.WriteStartObject("latency_ms");
        if (latency.Count > 0)
        {
            w.WriteNumber("min", latency.Min / 1000.0);
            w.WriteNumber("mean", Math.Round(latency.Mean / 1000.0, 3));
            foreach (var (name, percentile) in Percentiles)
            {
                w.WriteNumber(name, latency.ValueAtPercentile(percentile) / 1000.0);
            }
            w.WriteNumber("max", latency.Max / 1000.0);
        }
        w.WriteEndObject();
    }
}
