using System.Text.Json.Serialization;

namespace RaftKv.Faults.Tests.Workload;

/// <summary>What a client asked for.</summary>
public enum OpKind
{
    /// <summary>POST /key with one or several pairs: one atomic write.</summary>
    Write,

    /// <summary>GET /key/{k}?level=linearizable.</summary>
    Read,
}

/// <summary>What the client learnt about an operation.</summary>
public enum OpOutcome
{
    /// <summary>Acknowledged (a write), or answered (a read: 200 with the value, or 404 for a missing key).</summary>
    Ok,

    /// <summary>Definitely not applied: a refusal the server documents as "nothing happened" (4xx, 503, connection refused).</summary>
    Failed,

    /// <summary>May or may not have taken effect, at any time after its invocation (a timeout, 504, 502, a broken connection).</summary>
    Unknown,
}

/// <summary>
/// One client operation as recorded: what was asked, of which node, when (microseconds since the run started, on one
/// monotonic clock shared by every client) and what came back. For a read, <see cref="Values"/> holds the key and the
/// value read (null: the key was missing); for a write, every pair written.
/// </summary>
public sealed record HistoryOp(
    int Id,
    int Client,
    OpKind Kind,
    IReadOnlyDictionary<string, string?> Values,
    long Invoke,
    long Complete,
    OpOutcome Outcome,
    string Node,
    string? Detail = null)
{
    /// <summary>The one key a read reads.</summary>
    [JsonIgnore]
    public string ReadKey => Kind == OpKind.Read ? Values.Keys.Single() : throw new InvalidOperationException("not a read");

    /// <summary>One line for reports.</summary>
    public override string ToString()
    {
        var pairs = string.Join(", ", Values.Select(kv => $"{kv.Key}={kv.Value ?? "(missing)"}"));
        var what = Kind == OpKind.Write ? $"write {pairs}" : $"read {pairs}";
        return $"#{Id} client {Client} {what} via {Node} [{Invoke}..{Complete}us] {Outcome}{(Detail is null ? "" : " (" + Detail + ")")}";
    }
}
