using System.Diagnostics;

namespace RaftKv.Load;

/// <summary>
/// The load generator behind <c>raftkv bench</c>: <see cref="LoadOptions.Clients"/> workers, each sending one request
/// at a time through a raw <see cref="HttpClient"/> whose handler allows exactly that many connections, until the
/// duration has passed or the requests are all sent. Nothing is retried: a failure is counted by kind. Every
/// successful request's latency goes into the worker's <see cref="LatencyHistogram"/> (fixed size, so memory does not
/// grow with the run), merged at the end.
/// </summary>
public static class LoadRunner
{
    /// <summary>Runs the load against <paramref name="target"/>, which must have found its leader (<see cref="LoadTarget.PrepareAsync"/>).</summary>
    /// <param name="target">The cluster.</param>
    /// <param name="options">The load.</param>
    /// <param name="progress">Called about once a second while the run lasts (from another thread); null for none.</param>
    /// <param name="cancellationToken">Stops the run early; the report covers what was done.</param>
    /// <returns>The figures.</returns>
    public static async Task<LoadReport> RunAsync(LoadTarget target, LoadOptions options, Action<LoadProgress>? progress = null,
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

    private sealed class Run(LoadTarget target, LoadOptions options, HttpClient http, CancellationToken cancellationToken)
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
