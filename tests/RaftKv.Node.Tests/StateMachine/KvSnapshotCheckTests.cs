using System.Buffers.Binary;
using RaftKv.Node.StateMachine;

namespace RaftKv.Node.Tests.StateMachine;

/// <summary><see cref="KvSnapshotCheck"/>: a snapshot the state machine writes passes unchanged; anything it could not restore fails the read.</summary>
public sealed class KvSnapshotCheckTests
{
    private static byte[] Snapshot(int pairs)
    {
        var output = new MemoryStream();
        KvStateMachine.WriteSnapshot(Enumerable.Range(0, pairs).Select(i => KeyValuePair.Create("key" + i, new string('v', i * 37))).ToArray(), output);
        return output.ToArray();
    }

    /// <summary>Reads through the check in small, uneven pieces, so headers split across reads.</summary>
    private static byte[] ReadThrough(byte[] data)
    {
        using var check = new KvSnapshotCheck(new MemoryStream(data));
        var output = new MemoryStream();
        var buffer = new byte[7];
        int n;
        while ((n = check.Read(buffer, 0, 1 + (int)(output.Length % 7))) > 0) output.Write(buffer, 0, n);
        return output.ToArray();
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(300)]
    public void A_snapshot_the_state_machine_wrote_passes_unchanged_and_restores(int pairs)
    {
        var data = Snapshot(pairs);
        Assert.Equal(data, ReadThrough(data));
        var restored = new KvStateMachine();
        restored.Restore(new MemoryStream(data), 5);
        Assert.Equal(pairs, restored.Count);
    }

    public static TheoryData<string, byte[]> Malformed()
    {
        var good = Snapshot(3);
        var hugeCount = (byte[])good.Clone();
        BinaryPrimitives.WriteInt64LittleEndian(hugeCount, 1000);
        var negativeLength = (byte[])good.Clone();
        BinaryPrimitives.WriteInt32LittleEndian(negativeLength.AsSpan(8), -5);
        return new TheoryData<string, byte[]>
        {
            { "empty", [] },
            { "truncated count", good[..5] },
            { "truncated string", good[..(good.Length - 2)] },
            { "more pairs announced than sent", hugeCount },
            { "negative string length", negativeLength },
            { "trailing bytes", [.. good, 1, 2, 3] },
            { "random bytes", Enumerable.Range(0, 64).Select(i => (byte)(i * 97 + 13)).ToArray() },
        };
    }

    [Theory]
    [MemberData(nameof(Malformed))]
    public void A_snapshot_the_state_machine_could_not_restore_fails_the_read(string name, byte[] data)
    {
        var e = Record.Exception(() => ReadThrough(data));
        Assert.True(e is InvalidDataException, $"{name}: {e?.GetType().Name ?? "no exception"}");
    }
}
