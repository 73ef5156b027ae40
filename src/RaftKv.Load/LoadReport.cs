namespace RaftKv.Load;

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
