using System.Text;

namespace RaftKv.Node;

/// <summary>
/// What a node id may be. Checked where ids come in (the -id flag, a join) so that an id the transport would refuse
/// at every connection never reaches a node's options or the cluster configuration.
/// </summary>
public static class NodeIds
{
    /// <summary>Longest id in UTF-8 bytes: what the transport's handshake carries.</summary>
    public const int MaxBytes = 1024;

    /// <summary>Why <paramref name="id"/> is not a usable node id, or null when it is.</summary>
    public static string? Problem(string? id)
    {
        if (string.IsNullOrWhiteSpace(id)) return "a node id must not be empty";
        if (id.Any(char.IsControl)) return "a node id must not contain control characters (newlines, tabs...)";
        var bytes = Encoding.UTF8.GetByteCount(id);
        return bytes > MaxBytes ? $"a node id must be at most {MaxBytes} bytes (this one is {bytes})" : null;
    }
}
