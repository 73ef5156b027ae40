using System.Buffers;
using RaftKv.Raft;
using RaftKv.Storage.Wal;

namespace RaftKv.Storage;

/// <summary>
/// <see cref="IRaftLogStorage"/> on disk: a segmented write-ahead log with exactly <see cref="MemoryStorage"/>'s observable
/// semantics, surviving crashes and power loss for everything covered by a <see cref="Sync"/>.
/// </summary>
/// <remarks>
/// <para>Every write method appends a record (length + CRC32C framed, see <c>WalRecord</c>) to an in-memory buffer that
/// is handed to the OS when it fills up or at <see cref="Sync"/>; <see cref="Sync"/> then issues a single fdatasync for
/// everything written since the previous one (group commit). Nothing is durable before <see cref="Sync"/> returns.</para>
/// <para>The active segment reserves disk space ahead of its records (<see cref="StorageOptions.PreallocateBytes"/>), so
/// its file usually ends in zeros; recovery takes the first frame position from which the last segment holds only
/// zeros as the end of the records. A segment is cut to its records when the next one starts.</para>
/// <para>Overwriting entries (an <see cref="Append"/> starting at or below <see cref="LastIndex"/>) writes a truncate
/// marker before the new entries rather than cutting the file. That is safe because replay is strictly sequential:
/// the marker drops the old suffix exactly when it is replayed, the entries after it must then continue from the
/// marker's index, and a crash that loses the marker also loses everything written after it (recovery stops at the
/// first damaged record), so old and new suffixes are never mixed. Old entries stay on disk until compaction deletes
/// their segment.</para>
/// <para>Every segment starts with a header holding the whole log state at that point (hard state, snapshot, first and
/// last index), so once <see cref="Compact"/> or <see cref="InstallSnapshot"/> has been synced the segments holding no
/// live entry are deleted whole, oldest first, and recovery starts from the oldest remaining header.</para>
/// <para>Only the newest entries' payloads are kept in memory (<see cref="StorageOptions.EntryCacheBytes"/>); older ones
/// are read back from the segments, checksum verified. Per entry the index costs 24 bytes of memory.</para>
/// <para>Not thread-safe: the raft loop owns it. After an I/O error the instance refuses every further call (the state
/// of the file after a failed write or fsync is unknown); reopen it to recover what is durable.</para>
/// </remarks>
public sealed class FileLogStorage : IRaftLogStorage
{
    private const int ReadChunk = 1 << 20;

    private readonly string _dir;
    private readonly StorageOptions _options;
    private readonly Action<string>? _warn;
    private readonly List<Segment> _segments = [];
    private int _syncsInFlight;
    private readonly Deque<EntryLoc> _locs = new(1024);
    private readonly Deque<CachedEntry> _cache = new(1024);
    private long _cacheBytes;
    private ulong _offset;
    private ulong _offsetTerm;
    private byte[] _buffer;
    private int _buffered;
    private bool _activeHasRecords;
    private Exception? _failed;
    private bool _disposed;

    private FileLogStorage(string dir, StorageOptions options, Action<string>? warn)
    {
        _dir = dir;
        _options = options;
        _warn = warn;
        _buffer = new byte[options.WriteBufferBytes];
    }

    /// <summary>Where an entry's record lives. PayloadLength -1: not known (recovery only: its segment was deleted).</summary>
    private readonly record struct EntryLoc(ulong Term, long Position, uint Seq, int PayloadLength)
    {
        public bool Known => PayloadLength >= 0;
        public int DataLength => PayloadLength - WalRecord.EntryFields;
    }

    private readonly record struct CachedEntry(EntryType Type, ReadOnlyMemory<byte> Data);

    /// <inheritdoc />
    public HardState HardState { get; private set; }

    /// <inheritdoc />
    public SnapshotMetadata Snapshot { get; private set; } = SnapshotMetadata.Empty;

    /// <inheritdoc />
    public ulong FirstIndex => _offset + 1;

    /// <inheritdoc />
    public ulong LastIndex => _offset + (ulong)_locs.Count;

    /// <summary>The WAL directory.</summary>
    public string Directory => _dir;

    /// <summary>Number of segment files currently on disk.</summary>
    public int SegmentCount => _segments.Count;

    private Segment Active => _segments[^1];

    /// <summary>Where in the active segment the next record goes (tests: the file may be longer, see <see cref="StorageOptions.PreallocateBytes"/>).</summary>
    internal long WriteOffset => Active.Length + _buffered;

    /// <summary>
    /// Opens the WAL in <paramref name="directory"/> (created if missing), replaying every segment. Damage in the last
    /// segment past the last position a sync mark says was fsynced (a torn record, or a hole with unsynced records
    /// after it) is cut off and reported through <paramref name="warn"/>; any other damage throws
    /// <see cref="StorageCorruptException"/> naming the file and byte offset.
    /// </summary>
    public static FileLogStorage Open(string directory, StorageOptions? options = null, Action<string>? warn = null)
    {
        options ??= StorageOptions.Default;
        options.Validate();
        Durable.EnsureDirectory(directory);
        var storage = new FileLogStorage(directory, options, warn);
        try
        {
            storage.Recover();
            // What a killed process wrote may still be only in the page cache: a node that restarts treats its log as
            // durable (and may acknowledge entries it already holds without writing), so make it so. Earlier segments
            // were flushed when they were rolled.
            storage._segments[^1].Dirty = true;
            storage._segments[^1].Flush();
            return storage;
        }
        catch
        {
            foreach (var s in storage._segments) s.Dispose();
            throw;
        }
    }

    /// <summary>True if <paramref name="directory"/> holds at least one WAL segment.</summary>
    public static bool Exists(string directory) =>
        System.IO.Directory.Exists(directory) &&
        System.IO.Directory.EnumerateFiles(directory, "*" + Segment.Extension).Any(f => Segment.TryParseName(Path.GetFileName(f), out _, out _));

    // ---------------------------------------------------------------- reads

    /// <inheritdoc />
    public ulong Term(ulong index)
    {
        ThrowIfDisposed();
        if (index < _offset || index > LastIndex)
            throw new ArgumentOutOfRangeException(nameof(index), $"index {index} outside [{_offset}, {LastIndex}]");
        return index == _offset ? _offsetTerm : _locs[(int)(index - _offset - 1)].Term;
    }

    /// <inheritdoc />
    public void GetEntries(ulong lo, ulong hi, long maxBytes, List<Entry> into)
    {
        ThrowIfUnusable();
        if (lo < FirstIndex || hi > LastIndex + 1 || lo > hi)
            throw new ArgumentOutOfRangeException(nameof(lo), $"range [{lo}, {hi}) outside [{FirstIndex}, {LastIndex + 1})");
        var cacheFirst = LastIndex + 1 - (ulong)_cache.Count;

        // Decide how many entries to return exactly as MemoryStorage does, from sizes known without reading.
        long size = 0;
        var end = lo;
        for (; end < hi; end++)
        {
            size += (end >= cacheFirst ? _cache[(int)(end - cacheFirst)].Data.Length : Loc(end).DataLength) + 24;
            if (size > maxBytes && end > lo) break;
        }

        var i = lo;
        while (i < end)
        {
            if (i >= cacheFirst)
            {
                var c = _cache[(int)(i - cacheFirst)];
                into.Add(new Entry(i, Loc(i).Term, c.Type, c.Data));
                i++;
                continue;
            }
            i = ReadRun(i, Math.Min(end, cacheFirst), into);
        }
    }

    private ref EntryLoc Loc(ulong index) => ref _locs[(int)(index - _offset - 1)];

    /// <summary>Reads entries from index <paramref name="from"/> on, as many as lie back to back in one segment within one chunk; returns the next index.</summary>
    private ulong ReadRun(ulong from, ulong end, List<Entry> into)
    {
        var first = Loc(from);
        var segment = SegmentOf(first.Seq);
        var next = from;
        long bytes = 0;
        while (next < end)
        {
            var loc = Loc(next);
            var frame = WalRecord.FrameHeaderSize + loc.PayloadLength;
            if (loc.Seq != first.Seq || loc.Position != first.Position + bytes || (bytes > 0 && bytes + frame > ReadChunk)) break;
            bytes += frame;
            next++;
        }
        if (segment == Active && first.Position + bytes > segment.Length) FlushBuffer(); // still in our buffer
        var buffer = ArrayPool<byte>.Shared.Rent((int)bytes);
        try
        {
            var span = buffer.AsSpan(0, (int)bytes);
            var read = 0;
            while (read < span.Length)
            {
                var n = RandomAccess.Read(segment.Handle, span[read..], first.Position + read);
                if (n == 0) throw new StorageCorruptException(segment.FilePath, first.Position + read, $"file ends while reading entry {from + (ulong)into.Count}; it was shortened after it was opened");
                read += n;
            }
            var pos = 0;
            for (var index = from; index < next; index++)
            {
                var status = WalRecord.CheckFrame(span[pos..], out var payloadLength);
                if (status != FrameStatus.Ok)
                    throw new StorageCorruptException(segment.FilePath, first.Position + pos, $"record of entry {index} is damaged ({status}) on disk since it was written");
                var entry = WalRecord.DecodeEntry(span.Slice(pos + WalRecord.FrameHeaderSize, payloadLength));
                if (entry.Index != index || entry.Term != Loc(index).Term)
                    throw new StorageCorruptException(segment.FilePath, first.Position + pos, $"record holds entry {entry.Index}@{entry.Term} where entry {index}@{Loc(index).Term} was written");
                into.Add(entry);
                pos += WalRecord.FrameHeaderSize + payloadLength;
            }
        }
        catch (FormatException e)
        {
            throw new StorageCorruptException(segment.FilePath, first.Position, "unreadable entry record: " + e.Message, e);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return next;
    }

    private Segment SegmentOf(uint seq) => _segments[(int)(seq - _segments[0].Seq)];

    // ---------------------------------------------------------------- writes

    /// <inheritdoc />
    public void Append(ReadOnlySpan<Entry> entries)
    {
        ThrowIfUnusable();
        if (entries.IsEmpty) return;
        var first = entries[0].Index;
        if (first < FirstIndex || first > LastIndex + 1)
            throw new ArgumentOutOfRangeException(nameof(entries), $"append at {first} outside [{FirstIndex}, {LastIndex + 1}]");
        for (var k = 0; k < entries.Length; k++)
        {
            if (entries[k].Index != first + (ulong)k)
                throw new ArgumentException($"entries must have consecutive indexes: entry {k} has index {entries[k].Index}, expected {first + (ulong)k}", nameof(entries));
            if (entries[k].Data.Length > WalRecord.MaxPayload - WalRecord.EntryFields)
                throw new ArgumentException($"entry {entries[k].Index} is {entries[k].Data.Length} bytes; the largest an entry may be is {WalRecord.MaxPayload - WalRecord.EntryFields}", nameof(entries));
        }
        try
        {
            if (first <= LastIndex)
            {
                WriteRecord(WalRecord.EncodeTruncate(first));
                TruncateFrom(first);
            }
            foreach (ref readonly var e in entries)
            {
                var frame = WalRecord.EntryFrameSize(e.Data.Length);
                var position = Reserve(frame);
                WalRecord.WriteEntry(_buffer.AsSpan(_buffered), e);
                _buffered += frame;
                _locs.PushBack(new EntryLoc(e.Term, position, (uint)Active.Seq, frame - WalRecord.FrameHeaderSize));
                _cache.PushBack(new CachedEntry(e.Type, e.Data));
                _cacheBytes += e.Size;
            }
            while (_cacheBytes > _options.EntryCacheBytes && _cache.Count > 0)
            {
                _cacheBytes -= _cache[0].Data.Length + 24;
                _cache.PopFront(1);
            }
        }
        catch (Exception e) when (e is not ArgumentException)
        {
            _failed ??= e;
            throw;
        }
    }

    /// <inheritdoc />
    public void SetHardState(HardState state)
    {
        ThrowIfUnusable();
        if (state == HardState) return;
        Guarded(() => WriteRecord(WalRecord.EncodeHardState(state)));
        HardState = state;
    }

    /// <inheritdoc />
    /// <exception cref="InvalidOperationException">A sync started with <see cref="BeginSync"/> is not completed yet.</exception>
    public void Sync()
    {
        ThrowIfUnusable();
        if (_syncsInFlight > 0) throw new InvalidOperationException("complete the syncs in flight before a synchronous Sync");
        Guarded(() =>
        {
            FlushBuffer();
            Active.Flush();
            DeleteObsoleteSegments(ObsoleteBefore);
        });
    }

    /// <summary>
    /// The first half of <see cref="Sync"/>, for a caller that syncs on another thread: hands everything written so
    /// far to the operating system and returns the device flush that makes it durable. Run
    /// <see cref="BackgroundSync.Flush"/> on any thread, then <see cref="CompleteSync"/> on the thread that owns this
    /// storage; complete syncs in the order they began. Writes may go on meanwhile; they are not covered by this one.
    /// </summary>
    public BackgroundSync BeginSync()
    {
        ThrowIfUnusable();
        BackgroundSync? sync = null;
        Guarded(() =>
        {
            FlushBuffer();
            // Earlier segments were flushed when they were rolled, so the active one is all this sync must cover.
            sync = new BackgroundSync(Active, ObsoleteBefore);
        });
        _syncsInFlight++;
        return sync!;
    }

    /// <inheritdoc />
    public bool SyncsInBackground => true;

    IBackgroundSync IRaftLogStorage.BeginSync() => BeginSync();

    /// <summary>
    /// Finishes a sync begun with <see cref="BeginSync"/> after its <see cref="BackgroundSync.Flush"/> succeeded:
    /// deletes the segments that were obsolete when it began (what made them so is durable now).
    /// </summary>
    public void CompleteSync(IBackgroundSync background)
    {
        ArgumentNullException.ThrowIfNull(background);
        if (background is not BackgroundSync sync) throw new ArgumentException("not a sync of a FileLogStorage", nameof(background));
        ThrowIfUnusable();
        if (!sync.Flushed) throw new InvalidOperationException("the sync has not been flushed");
        _syncsInFlight--;
        // A sync of a segment rolled since needs no mark: the roll flushed it, and the new header is durable.
        if (sync.Segment == Active) Active.SyncedTo = Math.Max(Active.SyncedTo, sync.Position);
        Guarded(() => DeleteObsoleteSegments(sync.ObsoleteBefore));
    }

    /// <inheritdoc />
    public void FailSync(Exception error)
    {
        ArgumentNullException.ThrowIfNull(error);
        _failed ??= error;
    }

    // Segments before this one hold no live entry.
    private ulong ObsoleteBefore => _locs.Count > 0 ? _locs[0].Seq : Active.Seq;

    /// <inheritdoc />
    public void InstallSnapshot(SnapshotMetadata snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ThrowIfUnusable();
        Guarded(() => WriteRecord(WalRecord.EncodeSnapshot(RecordKind.InstallSnapshot, snapshot)));
        ApplyInstall(snapshot);
    }

    /// <inheritdoc />
    public void SetSnapshot(SnapshotMetadata snapshot)
    {
        ArgumentNullException.ThrowIfNull(snapshot);
        ThrowIfUnusable();
        if (snapshot.Index < Snapshot.Index) throw new ArgumentException($"snapshot {snapshot.Index} is older than {Snapshot.Index}", nameof(snapshot));
        Guarded(() => WriteRecord(WalRecord.EncodeSnapshot(RecordKind.Snapshot, snapshot)));
        Snapshot = snapshot;
    }

    /// <summary>
    /// Records an older snapshot than the current one: only for start-up reconciliation, when the newest snapshot file
    /// is damaged and the log still covers the gap from an older one.
    /// </summary>
    internal void ResetSnapshot(SnapshotMetadata snapshot)
    {
        ThrowIfUnusable();
        Guarded(() => WriteRecord(WalRecord.EncodeSnapshot(RecordKind.Snapshot, snapshot)));
        Snapshot = snapshot;
    }

    /// <inheritdoc />
    public void Compact(ulong index)
    {
        ThrowIfUnusable();
        if (index <= _offset) return;
        if (index > LastIndex) throw new ArgumentOutOfRangeException(nameof(index), $"compact {index} beyond last index {LastIndex}");
        if (index > Snapshot.Index) throw new ArgumentOutOfRangeException(nameof(index), $"compact {index} beyond snapshot {Snapshot.Index}");
        var term = Term(index);
        Guarded(() => WriteRecord(WalRecord.EncodeCompact(index, term)));
        ApplyCompact(index, term);
    }

    private void ApplyCompact(ulong index, ulong term)
    {
        var cacheFirst = LastIndex + 1 - (ulong)_cache.Count;
        if (index >= cacheFirst)
        {
            var drop = (int)(index - cacheFirst + 1);
            for (var k = 0; k < drop; k++) _cacheBytes -= _cache[k].Data.Length + 24;
            _cache.PopFront(drop);
        }
        _locs.PopFront((int)(index - _offset));
        _offset = index;
        _offsetTerm = term;
    }

    private void ApplyInstall(SnapshotMetadata snapshot)
    {
        _locs.Clear();
        _cache.Clear();
        _cacheBytes = 0;
        _offset = snapshot.Index;
        _offsetTerm = snapshot.Term;
        Snapshot = snapshot;
    }

    private void TruncateFrom(ulong index)
    {
        var n = (int)(LastIndex - index + 1);
        var fromCache = Math.Min(n, _cache.Count);
        for (var k = _cache.Count - fromCache; k < _cache.Count; k++) _cacheBytes -= _cache[k].Data.Length + 24;
        _cache.PopBack(fromCache);
        _locs.PopBack(n);
    }

    private void WriteRecord(byte[] frame)
    {
        Reserve(frame.Length);
        frame.CopyTo(_buffer, _buffered);
        _buffered += frame.Length;
    }

    /// <summary>
    /// Makes room for a frame of <paramref name="size"/> bytes at the end of the buffer and returns the file position it
    /// will have. The first record after a completed sync is preceded by a <see cref="RecordKind.Synced"/> mark naming
    /// the position that sync made durable: 21 bytes a sync, in the same write, so recovery knows how far the device
    /// held the records when anything after the mark reached it.
    /// </summary>
    private long Reserve(int size)
    {
        var mark = Active.SyncedTo > Active.MarkedTo ? WalRecord.SyncedFrameSize : 0;
        if (_activeHasRecords && Active.Length + _buffered + mark + size > _options.SegmentSize)
        {
            Roll();
            mark = 0;
        }
        if (mark > 0)
        {
            if (_buffered + mark > _buffer.Length) FlushBuffer();
            _buffered += WalRecord.WriteSynced(_buffer.AsSpan(_buffered), Active.SyncedTo);
            Active.MarkedTo = Active.SyncedTo;
        }
        if (_buffered + size > _buffer.Length)
        {
            FlushBuffer();
            if (size > _buffer.Length) _buffer = new byte[size];
        }
        _activeHasRecords = true;
        return Active.Length + _buffered;
    }

    private void FlushBuffer()
    {
        if (_buffered == 0) return;
        Active.Write(_buffer.AsSpan(0, _buffered), Math.Max(0, Math.Min(_options.PreallocateBytes, _options.SegmentSize - Active.FileSize)));
        _buffered = 0;
        if (_buffer.Length > _options.WriteBufferBytes) _buffer = new byte[_options.WriteBufferBytes]; // after a huge entry
    }

    /// <summary>
    /// Starts a new segment. The current one is flushed to the device first: the new header summarises the state its
    /// records produced, and recovery only forgives damage in the last segment.
    /// </summary>
    private void Roll()
    {
        FlushBuffer();
        // A finished segment ends exactly where its records end: only the last segment may end in reserved zeros.
        Active.ReleaseReserved();
        Active.Flush();
        var header = new SegmentHeader(Active.Seq + 1, LastIndex + 1, _offset, _offsetTerm, HardState, Snapshot);
        _segments.Add(Segment.Create(_dir, header));
        _activeHasRecords = false;
    }

    /// <summary>
    /// Deletes, oldest first, the segments before the one holding the first live entry. Called right after an fsync, so
    /// the compaction, snapshot or truncation that made them obsolete is durable before they go; each deletion is made
    /// durable before the next so that a crash always leaves a contiguous run of segments.
    /// </summary>
    private void DeleteObsoleteSegments(ulong keepFrom)
    {
        while (_segments.Count > 1 && _segments[0].Seq < keepFrom)
        {
            var s = _segments[0];
            s.Dispose();
            File.Delete(s.FilePath);
            Durable.FlushDirectory(_dir);
            _segments.RemoveAt(0);
        }
    }

    private void Guarded(Action action)
    {
        try
        {
            action();
        }
        catch (Exception e)
        {
            _failed ??= e;
            throw;
        }
    }

    private void ThrowIfDisposed() => ObjectDisposedException.ThrowIf(_disposed, this);

    private void ThrowIfUnusable()
    {
        ThrowIfDisposed();
        if (_failed is not null)
            throw new IOException($"WAL {_dir} is unusable after an earlier I/O error ({_failed.Message}); reopen it to recover what was synced", _failed);
    }

    // ---------------------------------------------------------------- lifecycle

    /// <inheritdoc />
    /// <remarks>Tests also use it to model what a killed process leaves on disk (the page cache keeps it).</remarks>
    public void FlushToOs() => Guarded(FlushBuffer);

    /// <summary>Closes the files without writing the buffer or syncing: what a process crash leaves behind.</summary>
    internal void SimulateCrash()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var s in _segments) s.Dispose();
    }

    /// <summary>Writes and syncs what is buffered (unless an I/O error made the instance unusable), then closes the files.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        try
        {
            if (_failed is null)
            {
                FlushBuffer();
                Active.Flush();
            }
        }
        finally
        {
            _disposed = true;
            foreach (var s in _segments) s.Dispose();
        }
    }

    // ---------------------------------------------------------------- recovery

    private void Recover()
    {
        foreach (var tmp in System.IO.Directory.EnumerateFiles(_dir, "*" + Segment.Extension + ".tmp"))
        {
            // A segment whose creation crashed before its rename: it never held a record.
            File.Delete(tmp);
        }
        var found = new List<(ulong Seq, ulong FirstIndex, string Path)>();
        foreach (var path in System.IO.Directory.EnumerateFiles(_dir, "*" + Segment.Extension))
        {
            if (Segment.TryParseName(Path.GetFileName(path), out var seq, out var firstIndex)) found.Add((seq, firstIndex, path));
            else _warn?.Invoke($"WAL {_dir}: ignoring {Path.GetFileName(path)}, which is not named like a segment");
        }
        found.Sort((a, b) => a.Seq.CompareTo(b.Seq));
        if (found.Count == 0)
        {
            _segments.Add(Segment.Create(_dir, new SegmentHeader(1, 1, 0, 0, HardState.Empty, SnapshotMetadata.Empty)));
            return;
        }
        for (var k = 1; k < found.Count; k++)
        {
            if (found[k].Seq != found[k - 1].Seq + 1)
                throw new StorageCorruptException(found[k].Path, -1,
                    $"segment {found[k].Seq} follows segment {found[k - 1].Seq} ({Path.GetFileName(found[k - 1].Path)}): the segment(s) in between are missing, a gap in the log");
        }
        if (found[^1].Seq > uint.MaxValue) throw new StorageCorruptException(found[^1].Path, -1, "segment sequence number out of range");
        foreach (var f in found) _segments.Add(Segment.OpenExisting(f.Path, f.Seq, f.FirstIndex));

        byte[] buffer = [];
        for (var k = 0; k < _segments.Count; k++)
        {
            var s = _segments[k];
            if (s.Length > int.MaxValue) throw new StorageCorruptException(s.FilePath, int.MaxValue, "segment larger than 2 GiB; segments are never written that large");
            if (buffer.Length < s.Length) buffer = GC.AllocateUninitializedArray<byte>((int)Math.Max(s.Length, Math.Min(_options.SegmentSize, int.MaxValue)));
            var span = buffer.AsSpan(0, (int)s.Length);
            var read = 0;
            while (read < span.Length)
            {
                var n = RandomAccess.Read(s.Handle, span[read..], read);
                if (n == 0) break;
                read += n;
            }
            Replay(s, span[..read], first: k == 0, last: k == _segments.Count - 1);
        }
        if (_locs.Count > 0 && !_locs[0].Known)
        {
            var firstKnown = FirstIndex;
            while (firstKnown <= LastIndex && !Loc(firstKnown).Known) firstKnown++;
            throw new StorageCorruptException(_segments[0].FilePath, 0,
                $"the log holds entries from {FirstIndex}, but entries {FirstIndex}..{firstKnown - 1} were in segments before this one, which are missing (deleted or lost)");
        }
    }

    private void Replay(Segment s, ReadOnlySpan<byte> data, bool first, bool last)
    {
        var pos = 0;
        var records = 0;
        while (pos < data.Length)
        {
            var status = WalRecord.CheckFrame(data[pos..], out var payloadLength);
            if (status == FrameStatus.Ok)
            {
                var payload = data.Slice(pos + WalRecord.FrameHeaderSize, payloadLength);
                try
                {
                    Apply(s, pos, payload, first);
                }
                catch (FormatException e)
                {
                    throw new StorageCorruptException(s.FilePath, pos, $"malformed record with a valid checksum ({e.Message}); was it written by a newer version?", e);
                }
                pos += WalRecord.FrameHeaderSize + payloadLength;
                records++;
                continue;
            }
            if (last && pos > 0 && data[pos..].IndexOfAnyExcept((byte)0) < 0)
            {
                // Only zeros from here on: space reserved ahead of the writes (or a tail whose blocks never reached the
                // device, which no sync covered). The records end here; the next one is written here. Earlier segments
                // were cut to their records when rolled, so zeros there mean lost records and are refused below.
                s.Length = pos;
                break;
            }
            var what = status switch
            {
                FrameStatus.Incomplete => "incomplete record (the file ends inside it)",
                FrameStatus.BadHeader => "damaged record length",
                _ => "record checksum mismatch",
            };
            if (!last)
                throw new StorageCorruptException(s.FilePath, pos, $"{what} in a segment that is not the last one (it was fsynced before the next segment was started)");
            if (pos == 0)
                throw new StorageCorruptException(s.FilePath, 0, $"{what} in the segment header (headers are fsynced before a segment is given its name)");
            var (after, highestMark) = WalRecord.ScanValidFrames(data, pos + 1);
            if (after == 0)
            {
                _warn?.Invoke($"WAL {s.FilePath}: {what} at byte offset {pos}; cutting off the last {data.Length - pos} bytes, a write torn by a crash before it was fsynced");
            }
            else if (!s.MarksSyncs)
            {
                throw new StorageCorruptException(s.FilePath, pos,
                    $"{what}, and valid records follow it; the segment predates sync marks, so this cannot be told from corruption of data that may have been acknowledged");
            }
            else if (highestMark > pos)
            {
                // The mark was written after a flush covering the damaged record completed: it was durable, and
                // possibly acknowledged, so it did not go missing in a power loss.
                throw new StorageCorruptException(s.FilePath, pos,
                    $"{what}, and a later record says the first {highestMark} bytes of the segment had been fsynced: this is damage to synced data that may have been acknowledged, not an unsynced write lost in a crash");
            }
            else
            {
                // Damage past every position a sync is known to have reached, with valid records after it: unsynced
                // writes that reached the device out of order. Nothing past the last sync was acknowledged.
                _warn?.Invoke($"WAL {s.FilePath}: {what} at byte offset {pos}, past the last synced position ({Math.Max(s.MarkedTo, highestMark)}), with {after} valid record(s) after it; " +
                              $"dropping the last {data.Length - pos} bytes: unsynced writes that a crash left out of order (none of them was acknowledged)");
            }
            RandomAccess.SetLength(s.Handle, pos);
            Durable.FlushData(s.Handle);
            s.Length = s.FileSize = pos;
            break;
        }
        if (pos == 0) throw new StorageCorruptException(s.FilePath, 0, "segment is empty: its header is missing");
        if (last) _activeHasRecords = records > 1;
    }

    private void Apply(Segment s, int pos, ReadOnlySpan<byte> payload, bool firstSegment)
    {
        var rec = WalRecord.Decode(payload);
        if (pos == 0)
        {
            if (rec.Kind != RecordKind.Header) throw new StorageCorruptException(s.FilePath, 0, $"segment starts with a {rec.Kind} record instead of its header");
            ApplyHeader(s, rec.Header, firstSegment);
            s.MarksSyncs = rec.Version >= 2;
            s.MarkedTo = WalRecord.FrameHeaderSize + payload.Length;
            return;
        }
        switch (rec.Kind)
        {
            case RecordKind.Header:
                throw new StorageCorruptException(s.FilePath, pos, "segment header in the middle of a segment");
            case RecordKind.Entry:
                if (rec.Index != LastIndex + 1)
                    throw new StorageCorruptException(s.FilePath, pos,
                        $"entry {rec.Index} where entry {LastIndex + 1} must come next ({(rec.Index <= LastIndex ? "an index going backwards" : "a gap")} with no truncation record before it)");
                _locs.PushBack(new EntryLoc(rec.Term, pos, (uint)s.Seq, payload.Length));
                break;
            case RecordKind.HardState:
                HardState = rec.HardState;
                break;
            case RecordKind.Truncate:
                if (rec.Index < FirstIndex || rec.Index > LastIndex)
                    throw new StorageCorruptException(s.FilePath, pos, $"truncation from index {rec.Index}, outside the log [{FirstIndex}, {LastIndex}]");
                TruncateFrom(rec.Index);
                break;
            case RecordKind.Snapshot:
                Snapshot = rec.Snapshot!;
                break;
            case RecordKind.InstallSnapshot:
                ApplyInstall(rec.Snapshot!);
                break;
            case RecordKind.Synced:
                // A mark names bytes flushed before it was written, so never a position past itself.
                if (rec.Position > pos || rec.Position < s.MarkedTo)
                    throw new StorageCorruptException(s.FilePath, pos, $"sync mark names position {rec.Position}, outside [{s.MarkedTo}, {pos}]");
                s.MarkedTo = rec.Position;
                break;
            case RecordKind.Compact:
                if (rec.Index <= _offset || rec.Index > LastIndex)
                    throw new StorageCorruptException(s.FilePath, pos, $"compaction to index {rec.Index}, outside the log [{FirstIndex}, {LastIndex}]");
                var loc = Loc(rec.Index);
                if (loc.Known && loc.Term != rec.Term)
                    throw new StorageCorruptException(s.FilePath, pos, $"compaction to {rec.Index}@{rec.Term}, but entry {rec.Index} has term {loc.Term}");
                ApplyCompact(rec.Index, rec.Term);
                break;
        }
    }

    private void ApplyHeader(Segment s, in SegmentHeader h, bool firstSegment)
    {
        if (h.Seq != s.Seq || h.FirstIndex != s.FirstIndex)
            throw new StorageCorruptException(s.FilePath, 0, $"header says segment {h.Seq} starting at index {h.FirstIndex}, which does not match the file name");
        if (h.FirstIndex < h.Offset + 1)
            throw new StorageCorruptException(s.FilePath, 0, $"header starts at index {h.FirstIndex} but says entries up to {h.Offset} are compacted");
        if (firstSegment)
        {
            HardState = h.HardState;
            Snapshot = h.Snapshot;
            _offset = h.Offset;
            _offsetTerm = h.OffsetTerm;
            // Entries (Offset, FirstIndex) were in segments deleted by compaction; the records that follow must drop them.
            var unknown = h.FirstIndex - 1 - h.Offset;
            if (unknown > int.MaxValue) throw new StorageCorruptException(s.FilePath, 0, $"header claims {unknown} earlier entries");
            for (ulong k = 0; k < unknown; k++) _locs.PushBack(new EntryLoc(0, 0, 0, -1));
            return;
        }
        if (h.FirstIndex != LastIndex + 1)
            throw new StorageCorruptException(s.FilePath, 0,
                $"segment starts at index {h.FirstIndex} but the previous segment ends at index {LastIndex} ({(h.FirstIndex <= LastIndex ? "an index going backwards" : "a gap between segments")})");
        if (h.Offset != _offset || h.OffsetTerm != _offsetTerm || h.HardState != HardState || h.Snapshot != Snapshot)
            throw new StorageCorruptException(s.FilePath, 0, "segment header disagrees with the state replayed from the segments before it");
    }
}
