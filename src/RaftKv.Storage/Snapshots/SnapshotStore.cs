using RaftKv.Raft;

namespace RaftKv.Storage.Snapshots;

/// <summary>
/// The node's snapshot files (one directory, <c>snapshots/</c> in a data directory). Snapshots are written to a
/// temporary name and renamed into place once complete and durable; the newest <see cref="Retain"/> are kept.
/// Every file carries its metadata and a CRC32C of its data, checked when read.
/// </summary>
/// <remarks>Creating and pruning may run while a snapshot is received; reads may run concurrently with all of them.</remarks>
public sealed class SnapshotStore
{
    private readonly Action<string>? _warn;
    private readonly Lock _lock = new();
    // The snapshot being received, if any: a newer one takes its place (see ReceiveAsync).
    private Incoming? _incoming;
    // Received snapshots not yet installed, by path: pruning leaves them alone (see ReleaseReceived).
    private readonly Dictionary<string, ulong> _received = new(StringComparer.Ordinal);

    private sealed record Incoming(CancellationTokenSource Cancel, TaskCompletionSource Gone);

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
    /// <remarks>
    /// <para>At most one snapshot is received at a time, so at most one incoming file is on disk: a newer receive
    /// cancels the one in progress (which throws <see cref="IOException"/>) and waits until its temporary file is
    /// deleted before it creates its own. The newer one comes from the current leader, or retries a transfer that broke.</para>
    /// <para>The stored snapshot is kept from pruning until <see cref="ReleaseReceived"/> says it was installed (or
    /// will not be): newer snapshots committed meanwhile must not delete it under the installer.</para>
    /// </remarks>
    public async Task<SnapshotInfo> ReceiveAsync(SnapshotMetadata metadata, Stream data, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(metadata);
        var mine = new Incoming(CancellationTokenSource.CreateLinkedTokenSource(cancellationToken), new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        Incoming? previous;
        lock (_lock)
        {
            previous = _incoming;
            _incoming = mine;
        }
        try
        {
            if (previous is not null)
            {
                _warn?.Invoke($"snapshot store {Directory}: incoming snapshot {metadata.Index} replaces the one still being received");
                await previous.Cancel.CancelAsync().ConfigureAwait(false);
                await previous.Gone.Task.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            return await ReceiveOneAsync(metadata, data, mine.Cancel.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException e) when (!cancellationToken.IsCancellationRequested)
        {
            throw new IOException($"receiving snapshot {metadata.Index} was abandoned: a newer incoming snapshot replaced it", e);
        }
        finally
        {
            lock (_lock)
            {
                if (_incoming == mine) _incoming = null;
            }
            mine.Gone.TrySetResult();
            mine.Cancel.Dispose();
        }
    }

    private async Task<SnapshotInfo> ReceiveOneAsync(SnapshotMetadata metadata, Stream data, CancellationToken cancellationToken)
    {
        // Disposed (its temporary file deleted) before ReceiveAsync reports this receive gone.
        using var writer = Create(metadata);
        await data.CopyToAsync(writer.Stream, 1 << 20, cancellationToken).ConfigureAwait(false);
        cancellationToken.ThrowIfCancellationRequested();
        // Committing syncs the file and the directory. The last read may have completed on a socket engine thread
        // (raftkvd runs socket completions inline), which must not wait for a disk: sync on the thread pool.
        return await Task.Run(() => writer.CommitReceived(), CancellationToken.None).ConfigureAwait(false);
    }

    /// <summary>
    /// Lets pruning delete the received snapshots up to <paramref name="index"/>: the installer calls it once it has
    /// installed one, or once the state has moved past them (then none of them will be installed).
    /// </summary>
    public void ReleaseReceived(ulong index)
    {
        lock (_lock)
        {
            foreach (var (path, i) in _received.ToList())
            {
                if (i <= index) _received.Remove(path);
            }
        }
    }

    /// <summary>Keeps a received snapshot from pruning until it is released (called before it gets its name).</summary>
    internal void KeepReceived(string path, ulong index)
    {
        lock (_lock) _received[path] = index;
    }

    /// <summary>
    /// Synchronous <see cref="ReceiveAsync"/> for a caller that receives one snapshot at a time itself (it takes no
    /// part in replacing a receive in progress); the snapshot is likewise kept until <see cref="ReleaseReceived"/>.
    /// </summary>
    public SnapshotInfo Receive(SnapshotMetadata metadata, Stream data)
    {
        ArgumentNullException.ThrowIfNull(data);
        using var writer = Create(metadata);
        data.CopyTo(writer.Stream, 1 << 20);
        return writer.CommitReceived();
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
        var deleted = false;
        lock (_lock)
        {
            foreach (var path in files.Skip(Retain))
            {
                // A received snapshot still waiting to be installed stays: the installer opens it by name.
                if (_received.ContainsKey(path)) continue;
                File.Delete(path);
                deleted = true;
            }
        }
        if (deleted) Durable.FlushDirectory(Directory);
    }
}
