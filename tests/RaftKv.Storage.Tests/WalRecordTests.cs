using RaftKv.Raft;
using RaftKv.Storage.Wal;

namespace RaftKv.Storage.Tests;

public class WalRecordTests
{
    private static DecodedRecord RoundTrip(byte[] frame)
    {
        Assert.Equal(FrameStatus.Ok, WalRecord.CheckFrame(frame, out var n));
        Assert.Equal(frame.Length - WalRecord.FrameHeaderSize, n);
        return WalRecord.Decode(frame.AsSpan(WalRecord.FrameHeaderSize, n));
    }

    [Fact]
    public void Every_kind_round_trips()
    {
        var meta = new SnapshotMetadata(42, 7, Make.Config("a", "b"));
        var hs = new HardState(9, "node-é", 40);
        Assert.Equal(hs, RoundTrip(WalRecord.EncodeHardState(hs)).HardState);
        Assert.Equal(new HardState(3, null, 0), RoundTrip(WalRecord.EncodeHardState(new HardState(3, null, 0))).HardState);
        Assert.Equal(17ul, RoundTrip(WalRecord.EncodeTruncate(17)).Index);
        var c = RoundTrip(WalRecord.EncodeCompact(5, 2));
        Assert.Equal((RecordKind.Compact, 5ul, 2ul), (c.Kind, c.Index, c.Term));
        Assert.Equal(meta, RoundTrip(WalRecord.EncodeSnapshot(RecordKind.Snapshot, meta)).Snapshot);
        Assert.Equal(RecordKind.InstallSnapshot, RoundTrip(WalRecord.EncodeSnapshot(RecordKind.InstallSnapshot, meta)).Kind);
        Assert.Same(SnapshotMetadata.Empty, RoundTrip(WalRecord.EncodeSnapshot(RecordKind.Snapshot, SnapshotMetadata.Empty)).Snapshot);
        var header = new SegmentHeader(3, 100, 50, 4, hs, meta);
        Assert.Equal(header, RoundTrip(WalRecord.EncodeHeader(header)).Header);

        var e = new Entry(12, 3, EntryType.Configuration, new byte[] { 1, 2, 3 });
        var frame = new byte[WalRecord.EntryFrameSize(3)];
        Assert.Equal(frame.Length, WalRecord.WriteEntry(frame, e));
        var back = WalRecord.DecodeEntry(frame.AsSpan(WalRecord.FrameHeaderSize));
        Assert.Equal((e.Index, e.Term, e.Type), (back.Index, back.Term, back.Type));
        Assert.Equal(e.Data.ToArray(), back.Data.ToArray());
    }

    [Fact]
    public void Damage_is_classified()
    {
        var frame = WalRecord.EncodeTruncate(17);
        Assert.Equal(FrameStatus.Incomplete, WalRecord.CheckFrame(frame.AsSpan(0, frame.Length - 1), out _));
        Assert.Equal(FrameStatus.Incomplete, WalRecord.CheckFrame(frame.AsSpan(0, 5), out _));
        var badLength = (byte[])frame.Clone();
        badLength[1] ^= 1;
        Assert.Equal(FrameStatus.BadHeader, WalRecord.CheckFrame(badLength, out _));
        var badPayload = (byte[])frame.Clone();
        badPayload[^1] ^= 0x80;
        Assert.Equal(FrameStatus.BadChecksum, WalRecord.CheckFrame(badPayload, out _));
        Assert.Equal(FrameStatus.BadHeader, WalRecord.CheckFrame(new byte[64], out _));
    }

    [Fact]
    public void Finds_a_valid_frame_after_damage_but_not_in_zeros_or_garbage()
    {
        var rng = new Random(3);
        var garbage = new byte[5000];
        rng.NextBytes(garbage);
        Assert.False(AnyValidFrameFrom(garbage, 0));
        Assert.False(AnyValidFrameFrom(new byte[100_000], 0));
        var frame = WalRecord.EncodeTruncate(17);
        var buffer = new byte[3000];
        frame.CopyTo(buffer, 2001);
        Assert.True(AnyValidFrameFrom(buffer, 0));
        Assert.False(AnyValidFrameFrom(buffer, 2002));
    }

    private static bool AnyValidFrameFrom(byte[] buffer, int from) => WalRecord.ScanValidFrames(buffer, from).Records > 0;
}
