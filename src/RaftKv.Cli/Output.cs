using System.Buffers;
using System.Text;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace RaftKv.Cli;

/// <summary>
/// Where results go: aligned tables and short sentences for people, or JSON for scripts (<c>-o json</c>).
/// Colour only when asked for (a terminal, NO_COLOR unset), and never in JSON.
/// </summary>
internal sealed class Output(TextWriter stdout, bool json, bool color)
{
    private static readonly JsonWriterOptions WriterOptions = new() { Indented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>True for <c>-o json</c>.</summary>
    public bool Json { get; } = json;

    /// <summary>Writes one line for people.</summary>
    public void Line(string text) => stdout.WriteLine(text);

    /// <summary>Writes a JSON document built by <paramref name="write"/>.</summary>
    public void WriteJson(Action<Utf8JsonWriter> write)
    {
        var buffer = new ArrayBufferWriter<byte>();
        using (var writer = new Utf8JsonWriter(buffer, WriterOptions))
        {
            write(writer);
        }
        stdout.WriteLine(Encoding.UTF8.GetString(buffer.WrittenSpan));
    }

    /// <summary>
    /// Writes rows under headers, each column as wide as its widest cell. <paramref name="paint"/> may pick an ANSI
    /// colour for a cell; padding is computed on the plain text so colour never misaligns columns.
    /// </summary>
    public void Table(IReadOnlyList<string> headers, IReadOnlyList<string[]> rows, Func<int, string, string?>? paint = null)
    {
        var widths = headers.Select(h => h.Length).ToArray();
        foreach (var row in rows)
        {
            for (var i = 0; i < row.Length; i++)
            {
                widths[i] = Math.Max(widths[i], row[i].Length);
            }
        }
        var line = new StringBuilder();
        void Emit(IReadOnlyList<string> cells, bool header)
        {
            line.Clear();
            for (var i = 0; i < cells.Count; i++)
            {
                var last = i == cells.Count - 1;
                var text = last ? cells[i] : cells[i].PadRight(widths[i]);
                var code = header ? (color ? "1" : null) : paint?.Invoke(i, cells[i]);
                line.Append(color && code is not null ? $"\u001b[{code}m{text}\u001b[0m" : text);
                if (!last)
                {
                    line.Append("  ");
                }
            }
            stdout.WriteLine(line.ToString().TrimEnd());
        }
        Emit(headers, header: true);
        foreach (var row in rows)
        {
            Emit(row, header: false);
        }
    }

    /// <summary>ANSI colour codes for a role: the leader stands out, trouble is red.</summary>
    public static string? RoleColor(string role) => role switch
    {
        "Leader" => "32",
        "Candidate" or "PreCandidate" => "33",
        "unreachable" => "31",
        _ => null,
    };
}
