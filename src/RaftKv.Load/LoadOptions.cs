using RaftKv.Client;

namespace RaftKv.Load;

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
