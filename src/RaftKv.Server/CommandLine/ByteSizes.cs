using System.Globalization;

namespace RaftKv.Server.CommandLine;

/// <summary>
/// Byte counts as operators write them: "1048576", "1MiB", "512KiB", "1MB". KB/MB/GB are decimal (1000-based),
/// KiB/MiB/GiB binary; the bare letters K/M/G are read as binary, since that is what people who write "1M" mean for buffers.
/// </summary>
public static class ByteSizes
{
    /// <summary>Parses a byte count.</summary>
    public static bool TryParse(string? text, out long value, out string? error)
    {
        value = 0;
        error = null;
        var s = (text ?? "").Trim();
        var i = 0;
        while (i < s.Length && (char.IsAsciiDigit(s[i]) || s[i] == '.'))
        {
            i++;
        }
        if (i == 0 || !double.TryParse(s.AsSpan(0, i), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
        {
            error = $"invalid size \"{s}\" (e.g. 1048576, 1MiB, 512KiB)";
            return false;
        }
        long multiplier = s.AsSpan(i).Trim().ToString().ToUpperInvariant() switch
        {
            "" or "B" => 1,
            "K" or "KIB" => 1L << 10,
            "M" or "MIB" => 1L << 20,
            "G" or "GIB" => 1L << 30,
            "KB" => 1_000,
            "MB" => 1_000_000,
            "GB" => 1_000_000_000,
            _ => -1,
        };
        if (multiplier < 0)
        {
            error = $"invalid size \"{s}\" (units: B, KiB, MiB, GiB, KB, MB, GB)";
            return false;
        }
        var bytes = number * multiplier;
        if (bytes > long.MaxValue / 2)
        {
            error = $"size \"{s}\" is too large";
            return false;
        }
        value = (long)bytes;
        return true;
    }
}
