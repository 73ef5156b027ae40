using RaftKv.Raft;
using RaftKv.Storage.Wal;

namespace RaftKv.Storage.Tests;

/// <summary>
/// Power-loss and bit-rot damage to the files, checked against the states the log went through: recovery must yield
/// exactly the state after some prefix of the records written, never less than what the last fsync covered, or refuse.
/// </summary>
public class CrashTests
{
    private static readonly StorageOptions OneSegment = new() { SegmentSize = 1 << 20, EntryCacheBytes = 1 << 20, WriteBufferBytes = 4096 };

    /// <summary>
    /// The last segment's bytes after a synced prefix and an unsynced tail, and the state after each record boundary.
    /// <see cref="Bytes"/> is the whole file: the records end at <see cref="DataEnd"/>, then come the zeros of the space
    /// reserved ahead of the writes.
    /// </summary>
    private sealed record Scenario(string SegmentPath, byte[] Bytes, long SyncedLength, List<(long End, string State)> Boundaries)
    {
        public long DataEnd => Boundaries[^1].End;
    }

    private static Scenario Build(TempDir dir)
    {
        var model = new MemoryStorage();
        var wal = FileLogStorage.Open(dir.Path, OneSegment);
        foreach (var s in new IRaftLogStorage[] { wal, model })
        {
            s.Append(Make.Entries(1, 20, 1, 40));
            s.SetHardState(new HardState(1, "a", 15));
            s.SetSnapshot(new SnapshotMetadata(10, 1, Make.Config("a", "b")));
            s.Compact(5);
            s.Sync();
        }
        var path = Directory.GetFiles(dir.Path, "*.wal").Single();
        long Length() => wal.WriteOffset;
        var boundaries = new List<(long, string)> { (Length(), Describe.State(model)) };
        void Step(Action<IRaftLogStorage> op)
        {
            op(model);
            op(wal);
            wal.FlushToOs();
            boundaries.Add((Length(), Describe.State(model)));
        }

        // The unsynced tail: one record per step, except the overwrite, whose two records are split by hand, and the
        // first, which the mark of the sync before it precedes.
        Step(s => s.Append([Make.Entry(21, 2, 40)]));
        boundaries.Insert(1, (boundaries[0].Item1 + WalRecord.SyncedFrameSize, boundaries[0].Item2));
        Step(s => s.SetHardState(new HardState(2, "b", 18)));
        Step(s => s.Append([Make.Entry(22, 2, 0)]));
        var truncatedState = Describe.State(Make.Truncated(model, 21));
        var before = Length();
        Step(s => s.Append([Make.Entry(21, 3, 25)])); // truncate marker + entry
        boundaries.Insert(boundaries.Count - 1, (before + WalRecord.EncodeTruncate(21).Length, truncatedState));
        Step(s => s.SetSnapshot(new SnapshotMetadata(18, 1, Make.Config("a", "b", "c"))));
        Step(s => s.Compact(12));
        Step(s => s.Append([Make.Entry(22, 3, 70)]));
        Step(s => s.Append([Make.Entry(23, 3, 5)]));
        wal.SimulateCrash();
        var bytes = File.ReadAllBytes(path);
        var synced = (int)boundaries[0].Item1;
        Assert.Equal(FrameStatus.Ok, WalRecord.CheckFrame(bytes.AsSpan(synced), out var markLength));
        var mark = WalRecord.Decode(bytes.AsSpan(synced + WalRecord.FrameHeaderSize, markLength));
        Assert.Equal((RecordKind.Synced, (long)synced), (mark.Kind, mark.Position));
        Assert.True(bytes.AsSpan((int)boundaries[^1].Item1).IndexOfAnyExcept((byte)0) < 0, "the reserved space is not zeros");
        // Where the filesystem cannot reserve space (not Linux, or no fallocate), zeros appended by hand look the same
        // to recovery.
        if (bytes.Length == boundaries[^1].Item1) bytes = [.. bytes, .. new byte[64 << 10]];
        return new Scenario(path, bytes, boundaries[0].Item1, boundaries);
    }

    private static (string? State, StorageCorruptException? Error, List<string> Warnings) Recover(TempDir dir, string path, byte[] bytes)
    {
        File.WriteAllBytes(path, bytes);
        var warnings = new List<string>();
        try
        {
            using var wal = FileLogStorage.Open(dir.Path, OneSegment, warnings.Add);
            return (Describe.State(wal), null, warnings);
        }
        catch (StorageCorruptException e)
        {
            return (null, e, warnings);
        }
    }

    [Fact]
    public void Recovery_of_a_segment_with_reserved_space_finds_where_the_records_end()
    {
        using var dir = new TempDir();
        var sc = Build(dir);
        var (state, error, warnings) = Recover(dir, sc.SegmentPath, sc.Bytes);
        Assert.Null(error);
        Assert.Empty(warnings);
        Assert.Equal(sc.Boundaries[^1].State, state);
        // New records go where the old ones end, not after the reserved zeros: a later recovery finds them.
        string written;
        using (var wal = FileLogStorage.Open(dir.Path, OneSegment))
        {
            Assert.Equal(sc.DataEnd, wal.WriteOffset);
            wal.Append([Make.Entry(24, 3, 30)]);
            wal.Sync();
            written = Describe.State(wal);
        }
        using var again = FileLogStorage.Open(dir.Path, OneSegment);
        Assert.Equal(written, Describe.State(again));
        Assert.Equal(24ul, again.LastIndex);
    }

    [Fact]
    public void Cut_at_every_byte_of_the_unsynced_tail_recovers_exactly_the_complete_records()
    {
        // The file ends early, as when its size was recorded but not all its data (a segment written without reserved space).
        using var dir = new TempDir();
        var sc = Build(dir);
        for (var cut = sc.SyncedLength; cut <= sc.DataEnd; cut++)
        {
            var (state, error, warnings) = Recover(dir, sc.SegmentPath, sc.Bytes[..(int)cut]);
            Assert.Null(error);
            var expected = sc.Boundaries.Last(b => b.End <= cut);
            Assert.True(expected.State == state, $"cut at {cut}: expected\n{expected.State}\ngot\n{state}");
            Assert.Equal(expected.End == cut ? 0 : 1, warnings.Count);
            Assert.Equal(expected.End, new FileInfo(sc.SegmentPath).Length); // the torn bytes are gone for good
        }
    }

    [Fact]
    public void Zeros_from_any_byte_of_the_unsynced_tail_on_recover_exactly_the_complete_records()
    {
        // Reserved space keeps the file's size; what never reached the device reads back as zeros.
        using var dir = new TempDir();
        var sc = Build(dir);
        for (var cut = sc.SyncedLength; cut <= sc.DataEnd; cut++)
        {
            var bytes = (byte[])sc.Bytes.Clone();
            Array.Clear(bytes, (int)cut, bytes.Length - (int)cut);
            var (state, error, warnings) = Recover(dir, sc.SegmentPath, bytes);
            Assert.Null(error);
            // The last record whose bytes are all still there: zeroing bytes that were zeros already changes nothing.
            var expected = sc.Boundaries.Last(b => b.End <= cut || sc.Bytes.AsSpan((int)cut, (int)(b.End - cut)).IndexOfAnyExcept((byte)0) < 0);
            Assert.True(expected.State == state, $"zeros from {cut}: expected\n{expected.State}\ngot\n{state}");
            // A partial record is reported and cut off, unless what survived of it is zeros too (a length whose low byte is 0).
            var torn = expected.End < cut && bytes.AsSpan((int)expected.End, (int)(cut - expected.End)).IndexOfAnyExcept((byte)0) >= 0;
            Assert.Equal(torn ? 1 : 0, warnings.Count);
            var after = File.ReadAllBytes(sc.SegmentPath);
            Assert.True(after.Length >= expected.End && after.AsSpan((int)expected.End).IndexOfAnyExcept((byte)0) < 0,
                $"zeros from {cut}: bytes of the partial record are still in the file");
        }
    }

    [Fact]
    public void Zeroed_tail_after_a_crash_is_cut_like_a_short_file()
    {
        using var dir = new TempDir();
        var sc = Build(dir);
        var last = sc.Boundaries[^2].End;
        var bytes = (byte[])sc.Bytes.Clone();
        Array.Clear(bytes, (int)last + 3, bytes.Length - (int)last - 3);
        var (state, error, warnings) = Recover(dir, sc.SegmentPath, [.. bytes, .. new byte[4096]]);
        Assert.Null(error);
        Assert.Equal(sc.Boundaries[^2].State, state);
        Assert.Single(warnings);
    }

    [Fact]
    public void Flipped_bits_are_cut_from_the_damaged_record_on_past_the_last_sync_and_refused_before_it()
    {
        using var dir = new TempDir();
        var sc = Build(dir);
        var rng = new Random(11);
        for (var n = 0; n < 400; n++)
        {
            // A third of the flips in the unsynced tail, a third anywhere in the records, a third in the reserved zeros.
            var offset = (n % 3) switch
            {
                0 => rng.NextInt64(sc.SyncedLength, sc.DataEnd),
                1 => rng.NextInt64(0, sc.DataEnd),
                _ => rng.NextInt64(sc.DataEnd, sc.Bytes.Length),
            };
            var bytes = (byte[])sc.Bytes.Clone();
            bytes[offset] ^= (byte)(1 << rng.Next(8));
            var (state, error, warnings) = Recover(dir, sc.SegmentPath, bytes);
            if (offset >= sc.DataEnd)
            {
                // Garbage after the last record: a write torn there; every record is kept.
                Assert.True(error is null, $"flip at {offset} (reserved space): {error?.Message}");
                Assert.Equal(sc.Boundaries[^1].State, state);
                Assert.Single(warnings);
            }
            else if (offset >= sc.SyncedLength)
            {
                // Damage no sync covered: the records from the damaged one on are dropped, with one warning, whether or
                // not valid records follow (unsynced writes reach the device in any order).
                Assert.True(error is null, $"flip at {offset} (unsynced tail): {error?.Message}");
                Assert.Equal(sc.Boundaries.Last(b => b.End <= offset).State, state);
                Assert.Single(warnings);
            }
            else
            {
                // A sync covered it, and the mark after it says so.
                Assert.True(error is not null, $"flip at {offset} was not detected");
                Assert.Equal(sc.SegmentPath, error.FilePath);
                Assert.InRange(error.Offset, 0, offset);
                Assert.Contains($"at byte offset {error.Offset}", error.Message);
                Assert.Contains(Path.GetFileName(sc.SegmentPath), error.Message);
            }
        }
    }

    [Fact]
    public void A_hole_past_the_last_sync_with_valid_records_after_it_is_dropped_with_a_warning()
    {
        // A power loss can leave unsynced pages on the device out of order: a record missing (zeros) or half written
        // (garbage), and records written after it intact. Nothing there was acknowledged, so recovery keeps the
        // records before the hole and drops the rest, for good.
        using var dir = new TempDir();
        var sc = Build(dir);
        var rng = new Random(3);
        // Every record of the tail but the last (whose loss leaves nothing after it), as zeros and as garbage.
        for (var k = 1; k < sc.Boundaries.Count - 1; k++)
        {
            foreach (var garbage in new[] { false, true })
            {
                var (start, end) = (sc.Boundaries[k - 1].End, sc.Boundaries[k].End);
                var bytes = (byte[])sc.Bytes.Clone();
                if (garbage) rng.NextBytes(bytes.AsSpan((int)start, (int)(end - start)));
                else Array.Clear(bytes, (int)start, (int)(end - start));
                var (state, error, warnings) = Recover(dir, sc.SegmentPath, bytes);
                Assert.True(error is null, $"hole at [{start}, {end}) (garbage: {garbage}): {error?.Message}");
                Assert.True(sc.Boundaries[k - 1].State == state, $"hole at [{start}, {end}): expected\n{sc.Boundaries[k - 1].State}\ngot\n{state}");
                var warning = Assert.Single(warnings);
                // The position comes from the sync mark, unless the hole took it (then only the header is known synced).
                Assert.Contains($"at byte offset {start}, past the last synced position ({(k == 1 ? HeaderLength(sc.Bytes) : sc.SyncedLength)})", warning);
                Assert.Equal(start, new FileInfo(sc.SegmentPath).Length); // the stray records are gone for good

                // Reopened, nothing more is dropped; the log continues where the kept records end.
                using (var wal = FileLogStorage.Open(dir.Path, OneSegment, w => Assert.Fail(w)))
                {
                    Assert.Equal(state, Describe.State(wal));
                    wal.Append([Make.Entry(wal.LastIndex + 1, 9, 10)]);
                    wal.Sync();
                    state = Describe.State(wal);
                }
                using (var again = FileLogStorage.Open(dir.Path, OneSegment, w => Assert.Fail(w)))
                {
                    Assert.Equal(state, Describe.State(again));
                }
            }
        }
    }

    private static int HeaderLength(byte[] segment) => WalRecord.FrameHeaderSize + BitConverter.ToInt32(segment, 0);

    /// <summary>Three batches: the first two synced, the third only handed to the OS; returns each batch's byte range.</summary>
    private static (string Path, byte[] Bytes, (long Start, long End)[] Batches, (long Start, long End)[] Records) ThreeBatches(TempDir dir, bool background)
    {
        var wal = FileLogStorage.Open(dir.Path, OneSegment);
        var batches = new List<(long, long)>();
        var records = new List<(long, long)>();
        ulong next = 1;
        for (var batch = 0; batch < 3; batch++)
        {
            var start = wal.WriteOffset;
            for (var k = 0; k < 4; k++, next++)
            {
                var before = wal.WriteOffset;
                wal.Append([Make.Entry(next, 1, 30)]);
                // The first record of a batch after a sync is preceded by that sync's mark.
                records.Add((wal.WriteOffset - WalRecord.EntryFrameSize(30), wal.WriteOffset));
                Assert.Equal(k == 0 && batch > 0 ? WalRecord.SyncedFrameSize : 0, wal.WriteOffset - before - WalRecord.EntryFrameSize(30));
            }
            batches.Add((start, wal.WriteOffset));
            if (batch == 2)
            {
                wal.FlushToOs();
            }
            else if (background)
            {
                var sync = wal.BeginSync();
                sync.Flush();
                wal.CompleteSync(sync);
            }
            else
            {
                wal.Sync();
            }
        }
        wal.SimulateCrash();
        var path = Directory.GetFiles(dir.Path, "*.wal").Single();
        return (path, File.ReadAllBytes(path), [.. batches], [.. records]);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void A_hole_in_records_a_later_sync_covered_is_refused_with_file_and_offset(bool background)
    {
        using var dir = new TempDir();
        var (path, original, batches, records) = ThreeBatches(dir, background);
        // Records of the first and second batch: the mark opening the third batch says a sync covered them.
        foreach (var (start, end) in records.Where(r => r.End <= batches[1].End))
        {
            var bytes = (byte[])original.Clone();
            Array.Clear(bytes, (int)start, (int)(end - start));
            var (state, error, _) = Recover(dir, path, bytes);
            Assert.True(error is not null, $"hole at [{start}, {end}) in synced records was accepted: {state}");
            Assert.Equal((path, start), (error.FilePath, error.Offset));
            Assert.Contains("fsynced", error.Reason);
            Assert.Contains(Path.GetFileName(path), error.Message);
        }
        // The same hole in the third batch, which no sync covered, is dropped.
        var tail = records.First(r => r.Start >= batches[2].Start);
        var ok = (byte[])original.Clone();
        Array.Clear(ok, (int)tail.Start, (int)(tail.End - tail.Start));
        var recovered = Recover(dir, path, ok);
        Assert.Null(recovered.Error);
        Assert.Single(recovered.Warnings);
    }

    [Fact]
    public void Records_recovered_at_start_count_as_synced()
    {
        // A restart makes what it recovered durable (the node may acknowledge it from then on), and says so in the
        // mark before the next records: a hole there afterwards is damage, not an unsynced tail.
        using var dir = new TempDir();
        long start, end;
        using (var wal = FileLogStorage.Open(dir.Path, OneSegment))
        {
            wal.Append(Make.Entries(1, 3, 1, 30));
            wal.Sync();
            start = wal.WriteOffset;
            wal.Append(Make.Entries(4, 5, 1, 30)); // unsynced, but still there at the restart
            wal.FlushToOs();
            end = wal.WriteOffset;
            wal.SimulateCrash();
        }
        using (var wal = FileLogStorage.Open(dir.Path, OneSegment))
        {
            Assert.Equal(5ul, wal.LastIndex);
            wal.Append([Make.Entry(6, 1, 30)]);
            wal.FlushToOs();
            wal.SimulateCrash();
        }
        var path = Directory.GetFiles(dir.Path, "*.wal").Single();
        var bytes = File.ReadAllBytes(path);
        Array.Clear(bytes, (int)start + WalRecord.SyncedFrameSize, (int)(end - start) - WalRecord.SyncedFrameSize);
        var (_, error, _) = Recover(dir, path, bytes);
        Assert.NotNull(error);
        Assert.Equal(start + WalRecord.SyncedFrameSize, error.Offset);
    }

    [Fact]
    public void A_hole_with_valid_records_after_it_in_a_segment_written_before_sync_marks_is_refused()
    {
        // Version 1 segments record no syncs: a hole there cannot be told from damage to synced records.
        using var dir = new TempDir();
        var sc = Build(dir);
        var header = WalRecord.Decode(sc.Bytes.AsSpan(WalRecord.FrameHeaderSize, BitConverter.ToInt32(sc.Bytes, 0))).Header;
        var v1 = WalRecord.EncodeHeader(header, version: 1);
        var bytes = (byte[])sc.Bytes.Clone();
        v1.CopyTo(bytes, 0);
        var (hole, holeEnd) = (sc.Boundaries[2].End, sc.Boundaries[3].End);
        Array.Clear(bytes, (int)hole, (int)(holeEnd - hole));
        var (_, error, _) = Recover(dir, sc.SegmentPath, bytes);
        Assert.NotNull(error);
        Assert.Equal(hole, error.Offset);
        Assert.Contains("predates sync marks", error.Reason);
    }

    [Fact]
    public void The_active_segment_reserves_space_and_a_finished_one_is_cut_to_its_records()
    {
        using var dir = new TempDir();
        var options = new StorageOptions { SegmentSize = 64 << 10, WriteBufferBytes = 4096, PreallocateBytes = 16 << 10 };
        using var wal = FileLogStorage.Open(dir.Path, options);
        wal.Append(Make.Entries(1, 10, 1, 100));
        wal.Sync();
        var first = Directory.GetFiles(dir.Path, "*.wal").Single();
        var reserved = new FileInfo(first).Length;
        if (OperatingSystem.IsLinux() && Environment.Is64BitProcess)
        {
            Assert.True(reserved > wal.WriteOffset, $"no space reserved: file {reserved} bytes, records end at {wal.WriteOffset}");
        }
        Assert.InRange(reserved, wal.WriteOffset, options.SegmentSize);

        // Fill past the segment size: the first segment is finished and must end exactly at its last record.
        wal.Append(Make.Entries(11, 700, 1, 100));
        wal.Sync();
        var segments = Directory.GetFiles(dir.Path, "*.wal").Order(StringComparer.Ordinal).ToArray();
        Assert.True(segments.Length >= 2);
        foreach (var finished in segments[..^1])
        {
            var bytes = File.ReadAllBytes(finished);
            Assert.True(bytes.Length <= options.SegmentSize);
            // Whole records from the first byte to the last, and nothing after them.
            var pos = 0;
            while (pos < bytes.Length && WalRecord.CheckFrame(bytes.AsSpan(pos), out var payload) == FrameStatus.Ok) pos += WalRecord.FrameHeaderSize + payload;
            Assert.Equal(bytes.Length, pos);
        }
    }

    [Fact]
    public void Without_reservation_the_file_ends_at_its_records()
    {
        using var dir = new TempDir();
        using var wal = FileLogStorage.Open(dir.Path, new StorageOptions { PreallocateBytes = 0 });
        wal.Append(Make.Entries(1, 10, 1, 100));
        wal.Sync();
        Assert.Equal(wal.WriteOffset, new FileInfo(Directory.GetFiles(dir.Path, "*.wal").Single()).Length);
    }

    [Fact]
    public void Zeros_after_the_records_of_a_segment_that_is_not_the_last_are_refused()
    {
        // Finished segments are cut to their records and synced, so zeros there are lost records, not reserved space.
        using var dir = new TempDir();
        var (_, segments) = ThreeSegments(dir);
        File.AppendAllBytes(segments[0], new byte[512]);
        var e = Refused(dir);
        Assert.Equal(segments[0], e.FilePath);
        Assert.Contains("not the last", e.Message);
    }

    private static (string Dir, string[] Segments) ThreeSegments(TempDir dir)
    {
        var options = new StorageOptions { SegmentSize = 4096, WriteBufferBytes = 4096 };
        using (var wal = FileLogStorage.Open(dir.Path, options))
        {
            wal.Append(Make.Entries(1, 70, 1, 100));
            wal.Sync();
        }
        var segments = Directory.GetFiles(dir.Path, "*.wal").Order(StringComparer.Ordinal).ToArray();
        Assert.True(segments.Length >= 3);
        return (dir.Path, segments);
    }

    private static StorageCorruptException Refused(TempDir dir) =>
        Assert.Throws<StorageCorruptException>(() => FileLogStorage.Open(dir.Path, new StorageOptions { SegmentSize = 4096, WriteBufferBytes = 4096 }).Dispose());

    [Fact]
    public void Any_flip_in_a_segment_that_is_not_the_last_is_refused()
    {
        using var dir = new TempDir();
        var (_, segments) = ThreeSegments(dir);
        var original = File.ReadAllBytes(segments[0]);
        var rng = new Random(4);
        for (var n = 0; n < 40; n++)
        {
            var offset = n == 0 ? original.Length - 1 : rng.Next(original.Length);
            var bytes = (byte[])original.Clone();
            bytes[offset] ^= 0x10;
            File.WriteAllBytes(segments[0], bytes);
            var e = Refused(dir);
            Assert.Equal(segments[0], e.FilePath);
            Assert.InRange(e.Offset, 0, offset);
        }
    }

    [Fact]
    public void A_missing_middle_segment_is_refused_as_a_gap()
    {
        using var dir = new TempDir();
        var (_, segments) = ThreeSegments(dir);
        File.Delete(segments[1]);
        var e = Refused(dir);
        Assert.Contains("missing", e.Message);
        Assert.Equal(segments[2], e.FilePath);
    }

    [Fact]
    public void A_missing_first_segment_still_holding_live_entries_is_refused()
    {
        using var dir = new TempDir();
        var (_, segments) = ThreeSegments(dir);
        File.Delete(segments[0]);
        var e = Refused(dir);
        Assert.Contains("entries 1..", e.Message);
        Assert.Equal(segments[1], e.FilePath);
    }

    [Fact]
    public void An_index_going_backwards_is_refused_even_at_the_tail()
    {
        using var dir = new TempDir();
        var (_, segments) = ThreeSegments(dir);
        var frame = new byte[WalRecord.EntryFrameSize(3)];
        WalRecord.WriteEntry(frame, new Entry(60, 1, EntryType.Normal, new byte[3]));
        var last = segments[^1];
        long at;
        using (var wal = FileLogStorage.Open(dir.Path, new StorageOptions { SegmentSize = 4096, WriteBufferBytes = 4096 }))
        {
            at = wal.WriteOffset;
        }
        using (var file = File.OpenHandle(last, FileMode.Open, FileAccess.Write))
        {
            RandomAccess.Write(file, frame, at);
        }
        var e = Refused(dir);
        Assert.Equal((last, at), (e.FilePath, e.Offset));
        Assert.Contains("going backwards", e.Message);
    }

    [Fact]
    public void A_segment_that_does_not_continue_the_previous_one_is_refused()
    {
        using var dir = new TempDir();
        var (_, segments) = ThreeSegments(dir);
        Segment.TryParseName(Path.GetFileName(segments[^1]), out var seq, out _);
        long end;
        using (var wal = FileLogStorage.Open(dir.Path, new StorageOptions { SegmentSize = 4096, WriteBufferBytes = 4096 }))
        {
            Assert.Equal(70ul, wal.LastIndex);
            end = wal.WriteOffset;
        }
        // As a roll would: the segment that stops being the last is cut to its records.
        using (var file = File.OpenHandle(segments[^1], FileMode.Open, FileAccess.Write))
        {
            RandomAccess.SetLength(file, end);
        }
        Segment.Create(dir.Path, new SegmentHeader(seq + 1, 75, 0, 0, HardState.Empty, SnapshotMetadata.Empty)).Dispose();
        var e = Refused(dir);
        Assert.Contains("a gap between segments", e.Message);
        Assert.Equal(0, e.Offset);
    }
}
