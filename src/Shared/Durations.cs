using System.Globalization;
using System.Text;

namespace RaftKv.Shared;

/// <summary>
/// Durations as Go writes them ("500ms", "2s", "1m30s", "1.5h"), the form hraftd and hashicorp/raft users already type.
/// raftkvd's flags and the raftkv CLI both compile this one file, so the two tools accept exactly the same text.
/// </summary>
internal static class Durations
{
    /// <summary>The units, for error messages.</summary>
    private const string Units = "ns, us, ms, s, m, h";

    /// <summary>
    /// Parses a Go duration: one or more number-and-unit pairs. A bare "0" is allowed (as in Go); any other number
    /// needs a unit, because a bare "5" could mean seconds to one reader and milliseconds to the next.
    /// </summary>
    /// <param name="text">The text (surrounding spaces ignored).</param>
    /// <param name="value">The duration, when the text is one.</param>
    /// <param name="error">Why the text is not a duration, in a sentence that shows the right form.</param>
    public static bool TryParse(string? text, out TimeSpan value, out string? error)
    {
        value = TimeSpan.Zero;
        error = null;
        var s = (text ?? "").Trim();
        if (s.Length == 0)
        {
            error = "empty duration (write a number and a unit, e.g. 500ms, 2s, 1m30s)";
            return false;
        }
        if (s == "0")
        {
            return true;
        }

        double totalTicks = 0;
        var i = 0;
        while (i < s.Length)
        {
            var start = i;
            while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
            {
                i++;
            }
            if (start == i || !double.TryParse(s.AsSpan(start, i - start), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
            {
                error = $"invalid duration \"{s}\" (write a number and a unit, e.g. 500ms, 2s, 1m30s)";
                return false;
            }
            var unitStart = i;
            while (i < s.Length && !char.IsAsciiDigit(s[i]) && s[i] != '.')
            {
                i++;
            }
            if (unitStart == i)
            {
                var digits = s.AsSpan(start, i - start).ToString();
                error = $"duration \"{s}\" has no unit (write {digits}s or {digits}ms; units: {Units})";
                return false;
            }
            double ticksPerUnit = s.AsSpan(unitStart, i - unitStart) switch
            {
                "ns" => TimeSpan.TicksPerMicrosecond / 1000.0,
                "us" or "\u00b5s" or "\u03bcs" => TimeSpan.TicksPerMicrosecond,
                "ms" => TimeSpan.TicksPerMillisecond,
                "s" => TimeSpan.TicksPerSecond,
                "m" => TimeSpan.TicksPerMinute,
                "h" => TimeSpan.TicksPerHour,
                _ => -1,
            };
            if (ticksPerUnit < 0)
            {
                error = $"unknown unit \"{s[unitStart..i]}\" in duration \"{s}\" (units: {Units}; e.g. 500ms, 2s, 1m30s)";
                return false;
            }
            totalTicks += number * ticksPerUnit;
        }
        if (totalTicks > TimeSpan.MaxValue.Ticks)
        {
            error = $"duration \"{s}\" is too long";
            return false;
        }
        value = TimeSpan.FromTicks((long)totalTicks);
        return true;
    }

    /// <summary>Formats a duration the way Go prints it ("1.5s", "100ms", "2m0s"), for help text, errors and logs.</summary>
    public static string Format(TimeSpan value)
    {
        if (value == TimeSpan.Zero)
        {
            return "0s";
        }
        if (value < TimeSpan.FromSeconds(1))
        {
            return value.TotalMilliseconds.ToString("0.######", CultureInfo.InvariantCulture) + "ms";
        }
        var sb = new StringBuilder();
        if (value.TotalHours >= 1)
        {
            sb.Append((long)value.TotalHours).Append('h');
        }
        if (value.TotalMinutes >= 1)
        {
            sb.Append(value.Minutes).Append('m');
        }
        var seconds = value.Seconds + value.Milliseconds / 1000.0;
        sb.Append(seconds.ToString("0.###", CultureInfo.InvariantCulture)).Append('s');
        return sb.ToString();
    }
}
