using System.Diagnostics;

namespace RaftKv.Server.Bench;

/// <summary>The figures of one load run.</summary>
internal sealed record LoadResult(string Name, int Connections, long Ok, long Errors, double Seconds, double P50Ms, double P99Ms)
{
    public double PerSecond => Ok / Seconds;
}

/// <summary>
/// Runs <c>connections</c> concurrent workers, each sending one request at a time for a fixed duration, and records
/// every latency. A worker is one HTTP connection (the handler allows exactly that many).
/// </summary>
internal static class LoadGenerator
{
    public static async Task<LoadResult> RunAsync(string name, int connections, TimeSpan duration,
        Func<HttpClient, int, long, Task<bool>> request)
    {
        using var handler = new SocketsHttpHandler { MaxConnectionsPerServer = connections, PooledConnectionLifetime = Timeout.InfiniteTimeSpan };
        using var client = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
        var latencies = new List<long>[connections];
        long ok = 0, errors = 0;
        var stop = Stopwatch.StartNew();
        var workers = Enumerable.Range(0, connections).Select(w => Task.Run(async () =>
        {
            var mine = latencies[w] = new List<long>(1 << 16);
            long i = 0;
            while (stop.Elapsed < duration)
            {
                var start = Stopwatch.GetTimestamp();
                bool success;
                try
                {
                    success = await request(client, w, i++);
                }
                catch (Exception)
                {
                    success = false;
                }
                if (success)
                {
                    mine.Add(Stopwatch.GetTimestamp() - start);
                    Interlocked.Increment(ref ok);
                }
                else
                {
                    Interlocked.Increment(ref errors);
                }
            }
        })).ToArray();
        await Task.WhenAll(workers);
        var seconds = stop.Elapsed.TotalSeconds;
        var all = latencies.SelectMany(l => l).ToArray();
        Array.Sort(all);
        double Ms(double q) => all.Length == 0 ? double.NaN : all[(int)Math.Min(all.Length - 1, q * all.Length)] * 1000.0 / Stopwatch.Frequency;
        return new LoadResult(name, connections, ok, errors, seconds, Ms(0.50), Ms(0.99));
    }
}
