namespace RaftKv.Storage;

/// <summary>
/// The data directory is damaged in a way recovery must not paper over (a bad checksum before the tail, a missing
/// segment, an index going backwards, a damaged snapshot the log cannot replace). The node refuses to start; the message
/// names the file and byte offset and says what the operator can do.
/// </summary>
public sealed class StorageCorruptException : IOException
{
    /// <summary>Creates the exception for damage found in <paramref name="path"/> at byte <paramref name="offset"/>.</summary>
    public StorageCorruptException(string path, long offset, string reason, Exception? inner = null)
        : base(Format(path, offset, reason), inner)
    {
        FilePath = path;
        Offset = offset;
        Reason = reason;
    }

    /// <summary>The damaged file (or directory).</summary>
    public string FilePath { get; }

    /// <summary>Byte offset in <see cref="FilePath"/> where the damage starts (-1 when it concerns the whole file).</summary>
    public long Offset { get; }

    /// <summary>What is wrong, without the file name and offset.</summary>
    public string Reason { get; }

    private static string Format(string path, long offset, string reason) =>
        $"storage corrupt: {path}{(offset >= 0 ? $" at byte offset {offset}" : "")}: {reason}. Refusing to start so that no " +
        "acknowledged write is lost or replaced by garbage; restore this node's data directory from a backup, or wipe it " +
        "and add the node back to the cluster so that it receives a fresh copy from the leader.";
}
