using RaftKv.Node;

namespace RaftKv.Server.Http;

/// <summary>The <c>?level=</c> query parameter (rqlite's names). Linearizable when absent: never stale unless asked.</summary>
internal static class ReadLevels
{
    /// <summary>Parses the level; 400 for anything else.</summary>
    public static ReadLevel FromQuery(HttpRequest request)
    {
        var values = request.Query["level"];
        if (values.Count == 0)
        {
            return ReadLevel.Linearizable;
        }
        return Parse(values[0]) ?? throw new RequestException(StatusCodes.Status400BadRequest,
            $"invalid read level \"{values[0]}\": use none, weak, linearizable or strong");
    }

    /// <summary>True for the levels a follower hands to the leader (a linearizable read is served by the follower itself).</summary>
    public static bool NeedLeader(ReadLevel level) => level is ReadLevel.Weak or ReadLevel.Strong;

    /// <summary>Parses one level name, case-insensitively; null when unknown.</summary>
    internal static ReadLevel? Parse(string? value) => value?.Trim().ToLowerInvariant() switch
    {
        "none" => ReadLevel.None,
        "weak" => ReadLevel.Weak,
        "linearizable" => ReadLevel.Linearizable,
        "strong" => ReadLevel.Strong,
        _ => null,
    };
}
