using System.Globalization;

namespace RaftKv.Cli;

/// <summary>Durations as raftkvd writes them: <c>500ms</c>, <c>5s</c>, <c>1m</c>, or a bare number of seconds.</summary>
internal static class Durations
{
    public static bool TryParse(string? text, out TimeSpan value)
    {
        value = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }
        text = text.Trim();
        var (number, scale) = text.EndsWith("ms", StringComparison.Ordinal) ? (text[..^2], 1.0)
            : text.EndsWith('s') ? (text[..^1], 1000.0)
            : text.EndsWith('m') ? (text[..^1], 60_000.0)
            : (text, 1000.0);
        if (!double.TryParse(number, NumberStyles.Float, CultureInfo.InvariantCulture, out var amount) || amount <= 0 || amount * scale > int.MaxValue)
        {
            return false;
        }
        value = TimeSpan.FromMilliseconds(amount * scale);
        return true;
    }

    /// <summary>A short human form: <c>12ms</c>, <c>1.5s</c>.</summary>
    public static string Format(double milliseconds) => milliseconds < 1000
        ? milliseconds.ToString("0", CultureInfo.InvariantCulture) + "ms"
        : (milliseconds / 1000).ToString("0.#", CultureInfo.InvariantCulture) + "s";
}
