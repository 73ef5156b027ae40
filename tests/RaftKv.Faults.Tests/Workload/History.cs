using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace RaftKv.Faults.Tests.Workload;

/// <summary>A fault applied or healed, at a time on the history's clock (microseconds since the run started).</summary>
public sealed record FaultEvent(long At, string What);

/// <summary>
/// The record of one run: every client operation and every fault event, timed on one monotonic clock, and what the
/// run was (seed, schedule). Safe to add to from any thread. Saved as JSON so a failing run can be kept and checked again.
/// </summary>
public sealed class History
{
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly List<HistoryOp> _ops = [];
    private readonly List<FaultEvent> _events = [];

    /// <summary>Microseconds since the history began.</summary>
    public long Now() => _clock.ElapsedTicks * 1_000_000 / Stopwatch.Frequency;

    /// <summary>Adds an operation; its id is set here, in completion order.</summary>
    public HistoryOp Add(HistoryOp op)
    {
        lock (_ops)
        {
            var withId = op with { Id = _ops.Count };
            _ops.Add(withId);
            return withId;
        }
    }

    public void Note(string what)
    {
        lock (_events) _events.Add(new FaultEvent(Now(), what));
    }

    public IReadOnlyList<HistoryOp> Ops
    {
        get { lock (_ops) return [.. _ops]; }
    }

    public IReadOnlyList<FaultEvent> Events
    {
        get { lock (_events) return [.. _events]; }
    }

    // Enums by name: the file is read by people too.
    private static readonly JsonSerializerOptions Json = new() { Converters = { new JsonStringEnumConverter() } };

    /// <summary>The file a run keeps: what it was, the faults, the operations.</summary>
    public sealed record File(int Seed, string Description, IReadOnlyList<FaultEvent> Events, IReadOnlyList<HistoryOp> Ops);

    public void Save(string path, int seed, string description)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        using var stream = System.IO.File.Create(path);
        JsonSerializer.Serialize(stream, new File(seed, description, Events, Ops), Json);
    }

    public static File Load(string path)
    {
        using var stream = System.IO.File.OpenRead(path);
        var file = JsonSerializer.Deserialize<File>(stream, Json);
        if (file?.Ops is null || file.Events is null || file.Ops.Any(o => o?.Values is null))
        {
            throw new InvalidDataException($"{path} is not a history file written by the fault suite (no Ops/Events, or an operation without Values)");
        }
        return file;
    }
}
