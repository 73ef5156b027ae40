using System.Text.Json.Serialization;

namespace RaftKv.Client;

/// <summary>Every JSON shape the client reads or writes, source-generated so nothing is resolved by reflection.</summary>
[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull)]
[JsonSerializable(typeof(Dictionary<string, string>))]
[JsonSerializable(typeof(RaftKvNodeStatus))]
[JsonSerializable(typeof(ErrorBody))]
[JsonSerializable(typeof(JoinBody))]
[JsonSerializable(typeof(IdBody))]
[JsonSerializable(typeof(SnapshotBody))]
internal sealed partial class ClientJsonContext : JsonSerializerContext;

/// <summary>The server's error shape: <c>{"error": "...", "leader": "host:port"?}</c>.</summary>
internal sealed class ErrorBody
{
    [JsonPropertyName("error")] public string? Error { get; init; }
    [JsonPropertyName("detail")] public string? Detail { get; init; }
    [JsonPropertyName("leader")] public string? Leader { get; init; }
}

/// <summary><c>POST /join</c>.</summary>
internal sealed class JoinBody
{
    [JsonPropertyName("id")] public required string Id { get; init; }
    [JsonPropertyName("addr")] public required string Addr { get; init; }
    [JsonPropertyName("http_addr")] public string? HttpAddr { get; init; }
    [JsonPropertyName("voter")] public bool Voter { get; init; }
}

/// <summary><c>{"id": ...}</c> for remove and transfer.</summary>
internal sealed class IdBody
{
    [JsonPropertyName("id")] public string? Id { get; init; }
}

/// <summary><c>POST /raft/snapshot</c>'s answer.</summary>
internal sealed class SnapshotBody
{
    [JsonPropertyName("index")] public ulong Index { get; init; }
}
