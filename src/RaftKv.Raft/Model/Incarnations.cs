using System.Globalization;
using System.Security.Cryptography;

namespace RaftKv.Raft;

/// <summary>How incarnations and cluster ids are drawn and written: 16 hex digits, the same in logs, JSON and files.</summary>
public static class Incarnations
{
    /// <summary>A fresh random incarnation, never 0 (0 means "not known").</summary>
    public static ulong New()
    {
        Span<byte> bytes = stackalloc byte[8];
        ulong value;
        do
        {
            RandomNumberGenerator.Fill(bytes);
            value = BitConverter.ToUInt64(bytes);
        }
        while (value == 0);
        return value;
    }

    /// <summary>A fresh random cluster id.</summary>
    public static string NewClusterId() => Format(New());

    /// <summary>16 lowercase hex digits; "unknown" for 0.</summary>
    public static string Format(ulong incarnation) => incarnation == 0 ? "unknown" : incarnation.ToString("x16", CultureInfo.InvariantCulture);

    /// <summary>Reads what <see cref="Format"/> wrote (1 to 16 hex digits).</summary>
    public static bool TryParse(string? text, out ulong incarnation)
    {
        incarnation = 0;
        return text is { Length: > 0 and <= 16 } && ulong.TryParse(text, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out incarnation);
    }
}
