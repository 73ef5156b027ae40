using System.Globalization;
using System.Text;

namespace RaftKv.Server.Cli;

/// <summary>
/// Go-style durations ("100ms", "1s", "2m", "1h30m", "1.5s"), the form hraftd and hashicorp/raft users already type.
/// </summary>
public static class Durations
{
    /// <summary>Parses a Go duration. A bare "0" is allowed (as in Go); any other number needs a unit.</summary>
    public static bool TryParse(string? text, out TimeSpan value, out string? error)
    {
        value = TimeSpan.Zero;
        error = null;
        var s = (text ?? "").Trim();
        if (s.Length == 0)
        {
            error = "empty duration";
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
                error = $"invalid duration \"{s}\" (use a number and a unit, e.g. 500ms, 2s, 1m30s)";
                return false;
            }
            var unitStart = i;
            while (i < s.Length && !char.IsAsciiDigit(s[i]) && s[i] != '.')
            {
                i++;
            }
            double ticksPerUnit = s.AsSpan(unitStart, i - unitStart) switch
            {
                "ns" => TimeSpan.TicksPerMicrosecond / 1000.0,
                "us" or "µs" => TimeSpan.TicksPerMicrosecond,
                "ms" => TimeSpan.TicksPerMillisecond,
                "s" => TimeSpan.TicksPerSecond,
                "m" => TimeSpan.TicksPerMinute,
                "h" => TimeSpan.TicksPerHour,
                _ => -1,
            };
            if (ticksPerUnit < 0)
            {
                error = $"invalid duration \"{s}\" (units: ns, us, ms, s, m, h; e.g. 500ms, 2s, 1m30s)";
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

    /// <summary>Formats a duration the way Go prints it ("1.5s", "100ms", "2m0s"), for help text and logs.</summary>
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
