using RaftKv.Raft;

namespace RaftKv.Storage.Snapshots;

/// <summary>
/// The node's snapshot files (one directory, <c>snapshots/</c> in a data directory). Snapshots are written to a
/// temporary name and renamed into place once complete and durable; the newest <see cref="Retain"/> are kept.
/// Every file carries its metadata and a CRC32C of its data, checked when read.
/// </summary>
/// <remarks>Creating, receiving and pruning are meant for one caller at a time (the node runtime); reads may run concurrently with them.</remarks>
public sealed class SnapshotStore
{
    private readonly Action<string>? _warn;

    private SnapshotStore(string directory, int retain, Action<string>? warn)
    {
        Directory = directory;
        Retain = retain;
        _warn = warn;
    }

    /// <summary>The store's directory.</summary>
    public string Directory { get; }

    /// <summary>How many of the newest snapshots are kept.</summary>
    public int Retain { get; }

    /// <summary>Opens (creating if needed) the store in <paramref name="directory"/> and deletes temporary files left by a crash.</summary>
    public static SnapshotStore Open(string directory, int retain = 2, Action<string>? warn = null)
    {
        if (retain < 1) throw new ArgumentOutOfRangeException(nameof(retain), retain, "must keep at least one snapshot");
        Durable.EnsureDirectory(directory);
        foreach (var tmp in System.IO.Directory.EnumerateFiles(directory, "*.tmp"))
        {
            warn?.Invoke($"snapshot store {directory}: deleting {Path.GetFileName(tmp)}, a snapshot whose writing did not complete");
            File.Delete(tmp);
        }
        return new SnapshotStore(directory, retain, warn);
    }

    /// <summary>Starts writing a snapshot covering <paramref name="metadata"/>; write its data to the writer's stream, then commit it.</summary>
    public SnapshotWriter Create(SnapshotMetadata metadata)
    {
        ArgumentNullException.ThrowIfNull(metadata);
        if (metadata.IsEmpty) throw new ArgumentException("a snapshot must cover at least index 1", nameof(metadata));
        return new SnapshotWriter(this, metadata);
    }

    /// <summary>
    /// Stores a snapshot arriving as a stream (InstallSnapshot from the leader): it is written to a temporary file first
    /// and committed like a local one only once <paramref name="data"/> has been read to its end.
    /// </summary>
    public async Task<SnapshotInfo> ReceiveAsync(SnapshotMetadata metadata, Stream data, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        using var writer = Create(metadata);
        await data.CopyToAsync(writer.Stream, 1 << 20, cancellationToken).ConfigureAwait(false);
        // Committing syncs the file and the directory. The last read may have completed on a socket engine thread
        // (raftkvd runs socket completions inline), which must not wait for a disk: sync on the thread pool.
        return await Task.Run(writer.Commit, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>Synchronous <see cref="ReceiveAsync"/>.</summary>
    public SnapshotInfo Receive(SnapshotMetadata metadata, Stream data)
    {
        ArgumentNullException.ThrowIfNull(data);
        using var writer = Create(metadata);
        data.CopyTo(writer.Stream, 1 << 20);
        return writer.Commit();
    }

    /// <summary>
    /// The snapshots whose header and trailer are intact, newest first (by index, then term). Damaged files are left
    /// out and reported through the warning callback. Data checksums are not checked here: see <see cref="Verify"/>.
    /// </summary>
    public IReadOnlyList<SnapshotInfo> List()
    {
        var list = new List<SnapshotInfo>();
        foreach (var path in Files())
        {
            try
            {
                list.Add(SnapshotFile.Inspect(path));
            }
            catch (StorageCorruptException e)
            {
                _warn?.Invoke(e.Message);
            }
            catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
            {
                // Pruned by a concurrent commit (the snapshot worker, or a snapshot being received) since it was listed.
            }
        }
        return list;
    }

    /// <summary>The newest intact snapshot, or null.</summary>
    public SnapshotInfo? Latest() => List() is [var first, ..] ? first : null;

    /// <summary>The intact snapshot covering exactly <paramref name="index"/> (the newest term if several), or null.</summary>
    public SnapshotInfo? Find(ulong index) => List().FirstOrDefault(s => s.Metadata.Index == index);

    /// <summary>Opens the data of a snapshot for reading; the checksum is verified when the end is read.</summary>
    public static Stream OpenRead(SnapshotInfo snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        return new SnapshotReadStream(snapshot);
    }

    /// <summary>Reads the whole snapshot and checks its data checksum; throws <see cref="StorageCorruptException"/> if it is damaged.</summary>
    public static void Verify(SnapshotInfo snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        SnapshotFile.VerifyData(snapshot);
    }

    /// <summary>Snapshot file paths, newest first by the index and term in their names.</summary>
    internal List<string> Files()
    {
        var files = new List<(ulong Index, ulong Term, string Path)>();
        foreach (var path in System.IO.Directory.EnumerateFiles(Directory, "*" + SnapshotFile.Extension))
        {
            if (SnapshotFile.TryParseName(Path.GetFileName(path), out var index, out var term)) files.Add((index, term, path));
        }
        files.Sort((a, b) => a.Index != b.Index ? b.Index.CompareTo(a.Index) : b.Term.CompareTo(a.Term));
        return files.ConvertAll(f => f.Path);
    }

    /// <summary>Deletes all but the newest <see cref="Retain"/> snapshot files, then makes that durable.</summary>
    internal void Prune()
    {
        var files = Files();
        if (files.Count <= Retain) return;
        foreach (var path in files.Skip(Retain)) File.Delete(path);
        Durable.FlushDirectory(Directory);
    }
}
