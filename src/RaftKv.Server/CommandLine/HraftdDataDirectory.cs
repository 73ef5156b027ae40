using RaftKv.Storage;

namespace RaftKv.Server.CommandLine;

/// <summary>
/// Recognises a data directory written by hraftd (hashicorp/raft): its log and votes in a BoltDB file, <c>raft.db</c>,
/// and its snapshots in <c>snapshots/&lt;term&gt;-&lt;index&gt;-&lt;time&gt;/meta.json</c>. raftkvd cannot read either, and
/// started on one it would look like a restart (and wait forever for a log it does not have) or a new node (and
/// ignore the data): so it is refused before anything starts.
/// </summary>
public static class HraftdDataDirectory
{
    /// <summary>hashicorp/raft-boltdb's file, hraftd's log and stable store.</summary>
    public const string BoltFile = "raft.db";

    /// <summary>hashicorp/raft's snapshot metadata file, one per snapshot folder.</summary>
    public const string SnapshotMeta = "meta.json";

    /// <summary>What of hraftd's is in <paramref name="path"/> (for the error message), or null when there is none.</summary>
    public static string? Describe(string path)
    {
        var found = new List<string>();
        if (File.Exists(Path.Combine(path, BoltFile)))
        {
            found.Add(BoltFile + " (BoltDB)");
        }
        var snapshots = Path.Combine(path, NodeStorage.SnapshotFolder);
        if (Directory.Exists(snapshots))
        {
            try
            {
                var hashicorp = Directory.EnumerateDirectories(snapshots).FirstOrDefault(d => File.Exists(Path.Combine(d, SnapshotMeta)));
                if (hashicorp is not null)
                {
                    found.Add($"{NodeStorage.SnapshotFolder}/{Path.GetFileName(hashicorp)}/{SnapshotMeta}");
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Unreadable: the storage's own checks report it.
            }
        }
        return found.Count == 0 ? null : string.Join(" and ", found);
    }
}
