using System.Text;
using RaftKv.Raft;

namespace RaftKv.Storage.Tests;

/// <summary>A fresh directory under the system temp folder, deleted on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public TempDir()
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "raftkv-storage-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public string Combine(params string[] parts) => System.IO.Path.Combine([Path, .. parts]);

    public void Dispose()
    {
        try
        {
            Directory.Delete(Path, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}

internal static class Describe
{
    /// <summary>Everything observable through <see cref="IRaftLogStorage"/>, as one comparable string.</summary>
    public static string State(IRaftLogStorage s)
    {
        var sb = new StringBuilder();
        sb.Append($"hs={s.HardState} snap={s.Snapshot.Index}@{s.Snapshot.Term}{s.Snapshot.Config} first={s.FirstIndex} last={s.LastIndex} term0={s.Term(s.FirstIndex - 1)}\n");
        if (s.LastIndex >= s.FirstIndex)
        {
            var list = new List<Entry>();
            s.GetEntries(s.FirstIndex, s.LastIndex + 1, long.MaxValue, list);
            foreach (var e in list) sb.Append($"{e.Index}@{e.Term}:{e.Type}:{Convert.ToHexString(e.Data.Span)}\n");
        }
        return sb.ToString();
    }

    public static string Entries(List<Entry> list) => string.Join(",", list.Select(e => $"{e.Index}@{e.Term}:{e.Type}:{Convert.ToHexString(e.Data.Span)}"));
}

internal static class Make
{
    /// <summary>Tiny segments, cache and buffer, so a few hundred entries roll segments and read from disk.</summary>
    public static readonly StorageOptions SmallSegments = new() { SegmentSize = 4096, EntryCacheBytes = 512, WriteBufferBytes = 4096 };

    public static Entry Entry(ulong index, ulong term, int size = 10, byte fill = 0) =>
        new(index, term, EntryType.Normal, Enumerable.Range(0, size).Select(i => (byte)(i + fill + (int)index)).ToArray());

    public static Entry[] Entries(ulong from, ulong to, ulong term, int size = 10) =>
        Enumerable.Range(0, (int)(to - from + 1)).Select(i => Entry(from + (ulong)i, term, size)).ToArray();

    public static ClusterConfig Config(params string[] ids) => new(ids.Select(id => new Member(id, id + ":7000", true)));

    /// <summary>A copy of <paramref name="m"/> with the entries from <paramref name="from"/> on dropped (MemoryStorage has no truncate-only operation).</summary>
    public static MemoryStorage Truncated(MemoryStorage m, ulong from)
    {
        var r = new MemoryStorage();
        r.InstallSnapshot(new SnapshotMetadata(m.FirstIndex - 1, m.Term(m.FirstIndex - 1), ClusterConfig.Empty));
        r.SetSnapshot(m.Snapshot);
        r.SetHardState(m.HardState);
        if (from > m.FirstIndex)
        {
            var list = new List<Entry>();
            m.GetEntries(m.FirstIndex, from, long.MaxValue, list);
            r.Append(list.ToArray());
        }
        return r;
    }
}
