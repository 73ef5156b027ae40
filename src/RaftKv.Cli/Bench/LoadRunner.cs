using System.Diagnostics;
using RaftKv.Client;

namespace RaftKv.Cli.Bench;

/// <summary>What one load run does.</summary>
public sealed class LoadOptions
{
    /// <summary>Concurrent workers, each with one request in flight on its own connection.</summary>
    public int Clients { get; init; } = 16;

    /// <summary>How long to run (when <see cref="Requests"/> is null). Default 10 s.</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Total requests to send, over all workers; null to run for <see cref="Duration"/>.</summary>
    public long? Requests { get; init; }

    /// <summary>Bytes per written value.</summary>
    public int ValueSize { get; init; } = 100;

    /// <summary>Key space: writes and reads pick keys uniformly among this many (ignored by <see cref="Distinct"/> writes).</summary>
    public long Keys { get; init; } = 100_000;

    /// <summary>Every write a new key (<see cref="KeyPrefix"/>0, 1, 2...); reads pick among the keys written so far.</summary>
    public bool Distinct { get; init; }

    /// <summary>Percentage of requests that are writes (the rest are reads).</summary>
    public int WritePercent { get; init; } = 100;

    /// <summary>Consistency of reads.</summary>
    public ReadLevel ReadLevel { get; init; } = ReadLevel.Linearizable;

    /// <summary>Keys are this prefix and a number (letters, digits, '-', '_', '.').</summary>
    public string KeyPrefix { get; init; } = "bench-";

    /// <summary>Time limit of one request; a request that takes longer counts as a timeout.</summary>
    public TimeSpan RequestTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Seeds the key choices and the value, so two runs send the same requests.</summary>
    public int Seed { get; init; } = 1;

    /// <summary>Checks the settings.</summary>
    /// <exception cref="ArgumentException">A setting is out of range.</exception>
    public void Validate()
    {
        if (Clients is < 1 or > 10_000)
        {
            throw new ArgumentException("clients must be between 1 and 10000");
        }
        if (Requests is < 1)
        {
            throw new ArgumentException("requests must be at least 1");
        }
        if (Requests is null && Duration <= TimeSpan.Zero)
        {
            throw new ArgumentException("duration must be positive");
        }
        if (ValueSize is < 0 or > 64 * 1024 * 1024)
        {
            throw new ArgumentException("value size must be between 0 and 64 MiB");
        }
        if (Keys < 1)
        {
            throw new ArgumentException("keys must be at least 1");
        }
        if (WritePercent is < 0 or > 100)
        {
            throw new ArgumentException("the write percentage must be between 0 and 100");
        }
        if (KeyPrefix.Length == 0 || !KeyPrefix.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
        {
            throw new ArgumentException("the key prefix must be letters, digits, '-', '_' or '.'");
        }
        if (RequestTimeout <= TimeSpan.Zero)
        {
            throw new ArgumentException("the request timeout must be positive");
        }
    }
}

/// <summary>A once-a-second look at a run in progress.</summary>
/// <param name="Elapsed">Time since the run started.</param>
/// <param name="Requests">Requests completed (successes and errors).</param>
/// <param name="Errors">Requests that failed.</param>
/// <param name="RatePerSecond">Requests completed per second over the last interval.</param>
public readonly record struct LoadProgress(TimeSpan Elapsed, long Requests, long Errors, double RatePerSecond);

/// <summary>The figures of one kind of request (writes or reads) in a run.</summary>
public sealed class KindReport
{
    internal KindReport(string name, LatencyHistogram latency, long misses, IReadOnlyDictionary<string, long> errors, TimeSpan elapsed)
    {
        Name = name;
        Latency = latency;
        Misses = misses;
        Errors = errors;
        ErrorCount = errors.Values.Sum();
        OpsPerSecond = elapsed > TimeSpan.Zero ? latency.Count / elapsed.TotalSeconds : 0;
    }

    /// <summary>"write" or "read".</summary>
    public string Name { get; }

    /// <summary>Requests sent and completed (successes and errors).</summary>
    public long Requests => Succeeded + ErrorCount;

    /// <summary>Requests that succeeded (reads of missing keys included).</summary>
    public long Succeeded => Latency.Count;

    /// <summary>Reads that found no such key (counted as successes).</summary>
    public long Misses { get; }

    /// <summary>Failures by kind: an HTTP status code ("503"), "timeout", "connection" or "other".</summary>
    public IReadOnlyDictionary<string, long> Errors { get; }

    /// <summary>All failures.</summary>
    public long ErrorCount { get; }

    /// <summary>Successful requests per second over the whole run.</summary>
    public double OpsPerSecond { get; }

    /// <summary>Latency of the successful requests, in microseconds.</summary>
    public LatencyHistogram Latency { get; }
}

/// <summary>The figures of one run.</summary>
public sealed class LoadReport
{
    internal LoadReport(string target, Uri endpoint, LoadOptions options, TimeSpan elapsed, bool interrupted, KindReport writes, KindReport reads)
    {
        Target = target;
        Endpoint = endpoint;
        Options = options;
        Elapsed = elapsed;
        Interrupted = interrupted;
        Writes = writes;
        Reads = reads;
        Latency = new LatencyHistogram();
        Latency.Add(writes.Latency);
        Latency.Add(reads.Latency);
    }

    /// <summary>"raftkv" or "etcd".</summary>
    public string Target { get; }

    /// <summary>Where the requests went at the end (the leader).</summary>
    public Uri Endpoint { get; }

    /// <summary>The settings of the run.</summary>
    public LoadOptions Options { get; }

    /// <summary>From the first request sent to the last answer.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>Cancelled before the end (Ctrl-C): the figures cover what was done.</summary>
    public bool Interrupted { get; }

    /// <summary>Writes.</summary>
    public KindReport Writes { get; }

    /// <summary>Reads.</summary>
    public KindReport Reads { get; }

    /// <summary>Latency of every successful request.</summary>
    public LatencyHistogram Latency { get; }

    /// <summary>Requests completed.</summary>
    public long Requests => Writes.Requests + Reads.Requests;

    /// <summary>Requests that succeeded.</summary>
    public long Succeeded => Writes.Succeeded + Reads.Succeeded;

    /// <summary>Requests that failed.</summary>
    public long ErrorCount => Writes.ErrorCount + Reads.ErrorCount;

    /// <summary>Successful requests per second.</summary>
    public double OpsPerSecond => Elapsed > TimeSpan.Zero ? Succeeded / Elapsed.TotalSeconds : 0;
}

/// <summary>
/// The load generator behind <c>raftkv bench</c>: <see cref="LoadOptions.Clients"/> workers, each sending one request
/// at a time through a raw <see cref="HttpClient"/> whose handler allows exactly that many connections, until the
/// duration has passed or the requests are all sent. Nothing is retried: a failure is counted by kind. Every
/// successful request's latency goes into the worker's <see cref="LatencyHistogram"/> (fixed size, so memory does not
/// grow with the run), merged at the end.
/// </summary>
public static class LoadRunner
{
    /// <summary>Runs the load against <paramref name="target"/>, which must have found its leader (<see cref="BenchTarget.PrepareAsync"/>).</summary>
    /// <param name="target">The cluster.</param>
    /// <param name="options">The load.</param>
    /// <param name="progress">Called about once a second while the run lasts (from another thread); null for none.</param>
    /// <param name="cancellationToken">Stops the run early; the report covers what was done.</param>
    /// <returns>The figures.</returns>
    public static async Task<LoadReport> RunAsync(BenchTarget target, LoadOptions options, Action<LoadProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(target);
        ArgumentNullException.ThrowIfNull(options);
        options.Validate();
        using var handler = new SocketsHttpHandler
        {
            MaxConnectionsPerServer = options.Clients,
            PooledConnectionLifetime = Timeout.InfiniteTimeSpan,
            PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5),
            AllowAutoRedirect = false,
            UseProxy = false,
            UseCookies = false,
            ConnectTimeout = options.RequestTimeout,
        };
        using var http = new HttpClient(handler) { Timeout = options.RequestTimeout };
        var run = new Run(target, options, http, cancellationToken);
        return await run.ExecuteAsync(progress).ConfigureAwait(false);
    }

    private sealed class Run(BenchTarget target, LoadOptions options, HttpClient http, CancellationToken cancellationToken)
    {
        private readonly Worker[] _workers = Enumerable.Range(0, options.Clients).Select(_ => new Worker()).ToArray();
        private readonly string _value = MakeValue(options.ValueSize, options.Seed);
        private long _claimed;
        private long _nextDistinct;
        private long _deadline;

        public async Task<LoadReport> ExecuteAsync(Action<LoadProgress>? progress)
        {
            var clock = Stopwatch.StartNew();
            _deadline = Stopwatch.GetTimestamp() + (long)(options.Duration.TotalSeconds * Stopwatch.Frequency);
            var tasks = new Task[_workers.Length];
            for (var i = 0; i < _workers.Length; i++)
            {
                var worker = _workers[i];
                var seed = HashCode.Combine(options.Seed, i);
                tasks[i] = Task.Run(() => WorkAsync(worker, new Random(seed)), CancellationToken.None);
            }
            var all = Task.WhenAll(tasks);
            if (progress is not null)
            {
                await ReportProgressAsync(all, clock, progress).ConfigureAwait(false);
            }
            await all.ConfigureAwait(false);
            var elapsed = clock.Elapsed;
            return new LoadReport(target.Name, target.Leader, options, elapsed, cancellationToken.IsCancellationRequested,
                Merge("write", _workers.Select(w => w.Writes), elapsed),
                Merge("read", _workers.Select(w => w.Reads), elapsed));
        }

        private async Task ReportProgressAsync(Task all, Stopwatch clock, Action<LoadProgress> progress)
        {
            using var timer = new PeriodicTimer(TimeSpan.FromSeconds(1));
            long lastCount = 0;
            var lastTime = TimeSpan.Zero;
            while (!all.IsCompleted)
            {
                var tick = timer.WaitForNextTickAsync().AsTask();
                await Task.WhenAny(tick, all).ConfigureAwait(false);
                if (all.IsCompleted)
                {
                    break;
                }
                long count = 0, errors = 0;
                foreach (var w in _workers)
                {
                    count += Volatile.Read(ref w.Completed);
                    errors += Volatile.Read(ref w.Failed);
                }
                var now = clock.Elapsed;
                var rate = (count - lastCount) / Math.Max(1e-6, (now - lastTime).TotalSeconds);
                (lastCount, lastTime) = (count, now);
                progress(new LoadProgress(now, count, errors, rate));
            }
        }

        private bool NextRequest()
        {
            if (cancellationToken.IsCancellationRequested)
            {
                return false;
            }
            return options.Requests is { } total
                ? Interlocked.Increment(ref _claimed) <= total
                : Stopwatch.GetTimestamp() < _deadline;
        }

        private async Task WorkAsync(Worker worker, Random random)
        {
            var level = options.ReadLevel;
            while (NextRequest())
            {
                var write = options.WritePercent == 100 || (options.WritePercent > 0 && random.Next(100) < options.WritePercent);
                string key;
                if (write)
                {
                    key = options.KeyPrefix + (options.Distinct ? Interlocked.Increment(ref _nextDistinct) - 1 : random.NextInt64(options.Keys));
                }
                else
                {
                    var space = options.Distinct ? Math.Max(1, Volatile.Read(ref _nextDistinct)) : options.Keys;
                    key = options.KeyPrefix + random.NextInt64(space);
                }
                var stats = write ? worker.Writes : worker.Reads;
                var start = Stopwatch.GetTimestamp();
                string? error;
                try
                {
                    var result = write
                        ? await target.WriteAsync(http, key, _value, cancellationToken).ConfigureAwait(false)
                        : await target.ReadAsync(http, key, level, cancellationToken).ConfigureAwait(false);
                    error = result.Success ? null : result.Status.ToString(System.Globalization.CultureInfo.InvariantCulture);
                    if (result.Success)
                    {
                        var micros = (Stopwatch.GetTimestamp() - start) * 1_000_000 / Stopwatch.Frequency;
                        stats.Latency.Record(micros);
                        if (result.Miss)
                        {
                            stats.Misses++;
                        }
                    }
                }
                catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
                {
                    // Interrupted: the request neither succeeded nor failed.
                    break;
                }
                catch (OperationCanceledException)
                {
                    error = "timeout";
                }
                catch (HttpRequestException e) when (e.InnerException is OperationCanceledException or TimeoutException)
                {
                    error = "timeout";
                }
                catch (HttpRequestException)
                {
                    error = "connection";
                    target.ReportConnectionError();
                }
                catch (IOException)
                {
                    error = "other";
                }
                if (error is not null)
                {
                    stats.Errors[error] = stats.Errors.GetValueOrDefault(error) + 1;
                    Volatile.Write(ref worker.Failed, worker.Failed + 1);
                }
                Volatile.Write(ref worker.Completed, worker.Completed + 1);
            }
        }

        private static KindReport Merge(string name, IEnumerable<KindStats> parts, TimeSpan elapsed)
        {
            var latency = new LatencyHistogram();
            long misses = 0;
            var errors = new SortedDictionary<string, long>(StringComparer.Ordinal);
            foreach (var part in parts)
            {
                latency.Add(part.Latency);
                misses += part.Misses;
                foreach (var (kind, count) in part.Errors)
                {
                    errors[kind] = errors.GetValueOrDefault(kind) + count;
                }
            }
            return new KindReport(name, latency, misses, errors, elapsed);
        }

        private static string MakeValue(int size, int seed)
        {
            const string alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
            var random = new Random(seed);
            return string.Create(size, random, (span, r) =>
            {
                for (var i = 0; i < span.Length; i++)
                {
                    span[i] = alphabet[r.Next(alphabet.Length)];
                }
            });
        }
    }

    private sealed class Worker
    {
        public long Completed;
        public long Failed;
        public KindStats Writes { get; } = new();
        public KindStats Reads { get; } = new();
    }

    private sealed class KindStats
    {
        public LatencyHistogram Latency { get; } = new();
        public long Misses;
        public Dictionary<string, long> Errors { get; } = new(StringComparer.Ordinal);
    }
}
