using RaftKv.Storage;

namespace RaftKv.Server.CommandLine;

/// <summary>Checks the data directory before anything starts, so a bad path is a usage error (exit 2), not a half-started node.</summary>
public static class DataDirectory
{
    /// <summary>
    /// Creates the directory if missing (as hraftd's MkdirAll) and proves it writable with a probe file that is removed at
    /// once. Returns an error message, or null when usable. With <paramref name="inMemory"/> nothing is created: the path
    /// only must not name a file.
    /// </summary>
    public static string? Validate(string path, bool inMemory)
    {
        if (string.IsNullOrWhiteSpace(path))
        {
            return "the data directory must not be empty";
        }
        if (File.Exists(path))
        {
            return $"data directory {path} exists and is a file";
        }
        if (inMemory)
        {
            return null;
        }
        foreach (var folder in new[] { NodeStorage.WalFolder, NodeStorage.SnapshotFolder })
        {
            if (File.Exists(Path.Combine(path, folder)))
            {
                return $"data directory {path} is not usable: {folder} must be a directory, and it is a file";
            }
        }
        if (HraftdDataDirectory.Describe(path) is { } hraftd)
        {
            return $"data directory {path} holds hraftd's raft state ({hraftd}), which raftkvd cannot read: give raftkvd a new directory " +
                "and copy the keys over through the HTTP API (hraftd serves each with GET /key/<name>), or move those files away";
        }
        if (Directory.Exists(Path.Combine(path, NodeStorage.LockFile)))
        {
            return $"data directory {path} is not usable: {NodeStorage.LockFile} must be a file, and it is a directory";
        }
        try
        {
            Directory.CreateDirectory(path);
            var probe = Path.Combine(path, $".raftkvd-probe-{Environment.ProcessId}");
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose))
            {
            }
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException or ArgumentException)
        {
            return $"data directory {path} is not usable: {e.Message}";
        }
    }

    /// <summary>
    /// True when the directory holds no node state (missing, empty, or only other files such as a volume's
    /// lost+found): the node is new, and may bootstrap or join.
    /// </summary>
    public static bool IsNew(string path) => !NodeStorage.HasState(path);
}
