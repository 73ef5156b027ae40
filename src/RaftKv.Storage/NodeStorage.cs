using RaftKv.Raft;
using RaftKv.Storage.Snapshots;

namespace RaftKv.Storage;

/// <summary>
/// A node's durable state in its data directory: the write-ahead log (<c>wal/</c>, the raft log and hard state) and
/// the snapshot store (<c>snapshots/</c>), opened and reconciled together. The node runtime calls <see cref="Open"/>
/// once at start-up, restores its state machine from <see cref="RestoreFrom"/> (if any), and hands <see cref="Log"/>
/// to the consensus core.
/// </summary>
/// <remarks>
/// Reconciliation on open:
/// <list type="bullet">
/// <item>The newest snapshot file is read in full and its checksum verified.</item>
/// <item>If it is damaged (or the log no longer joins it), an older one is used only when the log still holds every
/// entry after it; otherwise the node refuses to start with a <see cref="StorageCorruptException"/>.</item>
/// <item>A snapshot newer than the one the log records (a crash between committing the file and recording it) is
/// adopted: kept with the log when the log holds its last entry with the same term, else it replaces the log.</item>
/// <item>A log with no snapshot file behind its compacted prefix refuses to start.</item>
/// </list>
/// </remarks>
public sealed class NodeStorage : IDisposable
{
    /// <summary>Name of the WAL folder in a data directory.</summary>
    public const string WalFolder = "wal";

    /// <summary>Name of the snapshot folder in a data directory.</summary>
    public const string SnapshotFolder = "snapshots";

    /// <summary>Name of the lock file in a data directory.</summary>
    public const string LockFile = "LOCK";

    private readonly FileStream _lock;

    private NodeStorage(string dataDirectory, FileStream lockFile, ulong incarnation, FileLogStorage log, SnapshotStore snapshots, SnapshotInfo? restoreFrom)
    {
        Incarnation = incarnation;
        DataDirectory = dataDirectory;
        _lock = lockFile;
        Log = log;
        Snapshots = snapshots;
        RestoreFrom = restoreFrom;
    }

    /// <summary>The data directory.</summary>
    public string DataDirectory { get; }

    /// <summary>This node's incarnation: drawn when its WAL was created, so lost data means a new one.</summary>
    public ulong Incarnation { get; }

    /// <summary>The raft log and hard state, for the consensus core.</summary>
    public FileLogStorage Log { get; }

    /// <summary>The snapshot files.</summary>
    public SnapshotStore Snapshots { get; }

    /// <summary>
    /// The snapshot the state machine must be restored from before entries after <c>RestoreFrom.Metadata.Index</c> are
    /// applied (verified on open), or null to start from an empty state machine at index 1.
    /// </summary>
    public SnapshotInfo? RestoreFrom { get; }

    /// <summary>
    /// Opens the node's storage in <paramref name="dataDirectory"/> (created if missing), recovering the WAL and choosing
    /// the snapshot to restore from. Warnings (a torn tail cut off, a damaged snapshot skipped) go to <paramref name="warn"/>.
    /// </summary>
    /// <exception cref="StorageCorruptException">The directory is damaged in a way that could lose acknowledged writes.</exception>
    /// <exception cref="IOException">The directory is locked by another process, or an I/O error occurred.</exception>
    public static NodeStorage Open(string dataDirectory, StorageOptions? options = null, Action<string>? warn = null)
    {
        options ??= StorageOptions.Default;
        options.Validate();
        Durable.EnsureDirectory(dataDirectory);
        var lockFile = AcquireLock(dataDirectory);
        FileLogStorage? log = null;
        try
        {
            var walDir = Path.Combine(dataDirectory, WalFolder);
            var store = SnapshotStore.Open(Path.Combine(dataDirectory, SnapshotFolder), options.SnapshotsRetained, warn);
            // Checked before the WAL is opened, which would create a fresh one and hide the loss from the next start.
            if (!FileLogStorage.Exists(walDir) && store.Files().Count is var count and > 0)
                throw new StorageCorruptException(walDir, -1,
                    $"the WAL is missing but {count} snapshot(s) exist in {store.Directory}: the node's term, vote and log are lost, and starting without them could elect two leaders");
            // Drawn (when the WAL is new) before the WAL exists, so no crash can leave a WAL under an older incarnation.
            var incarnation = IncarnationFile.Load(dataDirectory, walIsNew: !FileLogStorage.Exists(walDir), warn);
            log = FileLogStorage.Open(walDir, options, warn);
            var restoreFrom = Reconcile(log, store, warn);
            return new NodeStorage(dataDirectory, lockFile, incarnation, log, store, restoreFrom);
        }
        catch
        {
            log?.Dispose();
            lockFile.Dispose();
            throw;
        }
    }

    /// <summary>
    /// True when <paramref name="dataDirectory"/> holds a node's state: a WAL, or snapshot files (which without a WAL
    /// make <see cref="Open"/> refuse, as it should). Anything else there (a lost+found, a README) is not state.
    /// </summary>
    public static bool HasState(string dataDirectory)
    {
        var snapshots = Path.Combine(dataDirectory, SnapshotFolder);
        return FileLogStorage.Exists(Path.Combine(dataDirectory, WalFolder))
            || (Directory.Exists(snapshots) && Directory.EnumerateFileSystemEntries(snapshots).Any());
    }

    private static FileStream AcquireLock(string dataDirectory)
    {
        var path = Path.Combine(dataDirectory, LockFile);
        try
        {
            return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException e)
        {
            throw new IOException($"data directory {dataDirectory} is in use by another process (cannot lock {path}); stop the other raftkvd first", e);
        }
    }

    private static SnapshotInfo? Reconcile(FileLogStorage log, SnapshotStore store, Action<string>? warn)
    {
        var files = store.Files();

        var compactedTo = log.FirstIndex - 1; // entries up to here exist only in a snapshot
        StorageCorruptException? newestDamage = null;
        SnapshotInfo? chosen = null;
        foreach (var path in files)
        {
            SnapshotInfo info;
            try
            {
                info = SnapshotFile.Inspect(path);
                SnapshotFile.VerifyData(info);
            }
            catch (StorageCorruptException e)
            {
                warn?.Invoke($"{e.Message} Trying an older snapshot.");
                newestDamage ??= e;
                continue;
            }
            var meta = info.Metadata;
            if (meta.Index < compactedTo)
            {
                // The log was compacted past this snapshot: restoring it would leave a hole. Older ones are worse.
                if (newestDamage is not null)
                    throw new StorageCorruptException(newestDamage.FilePath, newestDamage.Offset,
                        $"{newestDamage.Reason}; the older {info} cannot replace it because the log starts at index {log.FirstIndex}, not at or before {meta.Index + 1}");
                throw new StorageCorruptException(info.FilePath, -1,
                    $"the newest snapshot covers up to index {meta.Index} but the log was compacted up to index {compactedTo}: entries {meta.Index + 1}..{compactedTo} are lost");
            }
            if (newestDamage is not null && meta.Index <= log.LastIndex && meta.Index >= compactedTo && log.Term(meta.Index) != meta.Term)
            {
                warn?.Invoke($"{info} does not match the log (entry {meta.Index} has term {log.Term(meta.Index)}); skipping it");
                continue;
            }
            chosen = info;
            break;
        }

        if (chosen is null)
        {
            if (compactedTo > 0)
            {
                var reason = newestDamage is null
                    ? $"the log starts at index {log.FirstIndex} but no snapshot file covers the entries before it"
                    : $"{newestDamage.Reason}; no older snapshot can replace it because the log starts at index {log.FirstIndex}";
                throw new StorageCorruptException(newestDamage?.FilePath ?? store.Directory, newestDamage?.Offset ?? -1, reason);
            }
            if (!log.Snapshot.IsEmpty)
            {
                warn?.Invoke($"the log records snapshot {log.Snapshot.Index} but no intact snapshot file exists; the log holds every entry from index 1, so the node starts from it");
                log.ResetSnapshot(SnapshotMetadata.Empty);
                log.Sync();
            }
            return null;
        }

        var chosenMeta = chosen.Metadata;
        if (chosenMeta.Index > log.Snapshot.Index)
        {
            if (chosenMeta.Index <= log.LastIndex && log.Term(chosenMeta.Index) == chosenMeta.Term)
            {
                log.SetSnapshot(chosenMeta);
            }
            else
            {
                warn?.Invoke($"{chosen} is newer than the log (last index {log.LastIndex}) or conflicts with it; the log is replaced by it");
                log.InstallSnapshot(chosenMeta);
            }
        }
        else if (chosenMeta.Index < log.Snapshot.Index || chosenMeta != log.Snapshot)
        {
            warn?.Invoke($"falling back to {chosen}; the log still holds every entry after index {chosenMeta.Index}");
            log.ResetSnapshot(chosenMeta);
        }
        if (log.HardState.Commit < chosenMeta.Index)
            log.SetHardState(log.HardState with { Commit = chosenMeta.Index }); // a snapshot holds only committed entries
        log.Sync();
        return chosen;
    }

    /// <summary>Syncs and closes the log and releases the directory lock.</summary>
    public void Dispose()
    {
        try
        {
            Log.Dispose();
        }
        finally
        {
            _lock.Dispose();
        }
    }
}
