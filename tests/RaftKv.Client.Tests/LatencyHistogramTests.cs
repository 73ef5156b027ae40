using RaftKv.Load;

namespace RaftKv.Client.Tests;

/// <summary>raftkv bench's histogram against the exact answer: the values sorted, nearest rank.</summary>
public sealed class LatencyHistogramTests
{
    private static readonly double[] Percentiles = [0, 0.1, 1, 10, 25, 50, 75, 90, 99, 99.9, 99.99, 100];

    /// <summary>The smallest value with at least p % of the values at or below it.</summary>
    private static long Reference(long[] sorted, double percentile)
    {
        var rank = Math.Max(1, (long)Math.Ceiling(percentile / 100.0 * sorted.Length));
        return sorted[Math.Min(sorted.Length, rank) - 1];
    }

    private static void AssertMatchesReference(long[] values)
    {
        var histogram = new LatencyHistogram();
        foreach (var v in values) histogram.Record(v);
        var sorted = values.Order().ToArray();

        Assert.Equal(values.Length, histogram.Count);
        Assert.Equal(sorted[0], histogram.Min);
        Assert.Equal(sorted[^1], histogram.Max);
        Assert.Equal(values.Average(v => (double)v), histogram.Mean, precision: 6);
        long previous = 0;
        foreach (var p in Percentiles)
        {
            var exact = Reference(sorted, p);
            var got = histogram.ValueAtPercentile(p);
            if (exact < 256)
            {
                Assert.Equal(exact, got); // one bucket per microsecond below 256 µs
            }
            else
            {
                // Never below the exact value, and within one bucket (1/128) above it.
                Assert.InRange(got, exact, exact + (exact / 128.0));
            }
            Assert.True(got >= previous, $"p{p} = {got} < {previous}");
            previous = got;
        }
        Assert.Equal(sorted[^1], histogram.ValueAtPercentile(100));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Percentiles_match_a_sorted_array_for_latency_like_values(int seed)
    {
        // Log-normal around a millisecond with a long tail up to seconds, as request latencies look.
        var random = new Random(seed);
        var values = Enumerable.Range(0, 100_000)
            .Select(_ => (long)Math.Exp(7 + (1.5 * Math.Sqrt(-2 * Math.Log(1 - random.NextDouble())) * Math.Cos(2 * Math.PI * random.NextDouble()))))
            .ToArray();
        AssertMatchesReference(values);
    }

    [Fact]
    public void Percentiles_match_for_small_exact_values_and_for_huge_ones()
    {
        var random = new Random(7);
        AssertMatchesReference(Enumerable.Range(0, 10_000).Select(_ => (long)random.Next(0, 256)).ToArray());
        AssertMatchesReference(Enumerable.Range(0, 10_000).Select(_ => random.NextInt64(1, 1L << 39)).ToArray());
        AssertMatchesReference([5]);
        AssertMatchesReference([1_000_000, 3]);
        // Every value near bucket boundaries (powers of two and one either side).
        AssertMatchesReference(Enumerable.Range(1, 38).SelectMany(b => new[] { (1L << b) - 1, 1L << b, (1L << b) + 1 }).ToArray());
    }

    [Fact]
    public void Merging_equals_recording_everything_in_one()
    {
        var random = new Random(11);
        var values = Enumerable.Range(0, 20_000).Select(_ => random.NextInt64(0, 5_000_000)).ToArray();
        var whole = new LatencyHistogram();
        var parts = Enumerable.Range(0, 4).Select(_ => new LatencyHistogram()).ToArray();
        for (var i = 0; i < values.Length; i++)
        {
            whole.Record(values[i]);
            parts[i % 4].Record(values[i]);
        }
        var merged = new LatencyHistogram();
        merged.Add(new LatencyHistogram()); // an empty part changes nothing
        foreach (var part in parts) merged.Add(part);

        Assert.Equal((whole.Count, whole.Min, whole.Max, whole.Mean), (merged.Count, merged.Min, merged.Max, merged.Mean));
        foreach (var p in Percentiles) Assert.Equal(whole.ValueAtPercentile(p), merged.ValueAtPercentile(p));
    }

    [Fact]
    public void Empty_is_all_zeros_and_out_of_range_values_are_clamped()
    {
        var empty = new LatencyHistogram();
        Assert.Equal((0L, 0L, 0L, 0.0, 0L), (empty.Count, empty.Min, empty.Max, empty.Mean, empty.ValueAtPercentile(99)));

        var clamped = new LatencyHistogram();
        clamped.Record(-5);
        clamped.Record(long.MaxValue);
        Assert.Equal(0, clamped.Min);
        Assert.Equal(LatencyHistogram.HighestTrackable, clamped.Max);
        Assert.Equal(LatencyHistogram.HighestTrackable, clamped.ValueAtPercentile(100));
    }
}
