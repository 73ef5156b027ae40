using System.Numerics;

namespace RaftKv.Load;

/// <summary>
/// Latencies in whole microseconds, counted in log-linear buckets (as HdrHistogram does): values below 256 µs each have
/// a bucket of their own; above, every power of two is split into 128 equal buckets, so a reported percentile is
/// within 1/128 (0.8 %) of the exact one, whatever the range. Fixed size (about 32 KiB) however long the run; not
/// thread-safe (one per worker, merged at the end).
/// </summary>
public sealed class LatencyHistogram
{
    private const int SubBucketBits = 8;
    private const int SubBucketCount = 1 << SubBucketBits;     // exact below this
    private const int HalfCount = SubBucketCount / 2;          // buckets per power of two above it
    private const int MaxShift = 40 - SubBucketBits + 1;       // values up to 2^40 µs (12 days); larger ones are clamped

    /// <summary>The largest value recorded exactly (larger values count as this).</summary>
    public const long HighestTrackable = (1L << 40) - 1;

    private readonly long[] _counts = new long[SubBucketCount + (MaxShift * HalfCount)];
    private long _sum;

    /// <summary>Values recorded.</summary>
    public long Count { get; private set; }

    /// <summary>The smallest value recorded (0 when empty).</summary>
    public long Min { get; private set; }

    /// <summary>The largest value recorded (0 when empty).</summary>
    public long Max { get; private set; }

    /// <summary>The mean of the values recorded (0 when empty).</summary>
    public double Mean => Count == 0 ? 0 : (double)_sum / Count;

    /// <summary>Records one value in microseconds (negative values count as 0).</summary>
    public void Record(long microseconds)
    {
        var v = Math.Clamp(microseconds, 0, HighestTrackable);
        _counts[IndexOf(v)]++;
        _sum += v;
        if (Count == 0 || v < Min)
        {
            Min = v;
        }
        if (v > Max)
        {
            Max = v;
        }
        Count++;
    }

    /// <summary>Adds every value of <paramref name="other"/> to this histogram.</summary>
    public void Add(LatencyHistogram other)
    {
        ArgumentNullException.ThrowIfNull(other);
        if (other.Count == 0)
        {
            return;
        }
        for (var i = 0; i < _counts.Length; i++)
        {
            _counts[i] += other._counts[i];
        }
        Min = Count == 0 ? other.Min : Math.Min(Min, other.Min);
        Max = Math.Max(Max, other.Max);
        _sum += other._sum;
        Count += other.Count;
    }

    /// <summary>
    /// The value at a percentile: the smallest recorded value such that at least <paramref name="percentile"/> % of
    /// the values are at most it (the nearest-rank definition), as the highest value of its bucket (never above
    /// <see cref="Max"/>). Exact below 256 µs, within 1/128 above. 0 when empty.
    /// </summary>
    /// <param name="percentile">0 to 100.</param>
    public long ValueAtPercentile(double percentile)
    {
        if (Count == 0)
        {
            return 0;
        }
        if (percentile >= 100)
        {
            return Max;
        }
        var rank = Math.Max(1, (long)Math.Ceiling(Math.Clamp(percentile, 0, 100) / 100.0 * Count));
        long seen = 0;
        for (var i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= rank)
            {
                return Math.Clamp(HighestInBucket(i), Min, Max);
            }
        }
        return Max;
    }

    internal static int IndexOf(long value)
    {
        if (value < SubBucketCount)
        {
            return (int)value;
        }
        // shift >= 1 puts value >> shift in [128, 256).
        var shift = BitOperations.Log2((ulong)value) - (SubBucketBits - 1);
        return SubBucketCount + ((shift - 1) * HalfCount) + (int)((value >> shift) - HalfCount);
    }

    internal static long LowestInBucket(int index)
    {
        if (index < SubBucketCount)
        {
            return index;
        }
        var j = index - SubBucketCount;
        var shift = (j / HalfCount) + 1;
        return (long)((j % HalfCount) + HalfCount) << shift;
    }

    internal static long HighestInBucket(int index) =>
        index < SubBucketCount ? index : LowestInBucket(index) + (1L << (((index - SubBucketCount) / HalfCount) + 1)) - 1;
}
