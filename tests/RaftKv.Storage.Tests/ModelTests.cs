using RaftKv.Raft;

namespace RaftKv.Storage.Tests;

/// <summary>Random sequences of every operation, checked step by step against <see cref="MemoryStorage"/>, with reopens and crashes.</summary>
public class ModelTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(6)]
    public void Random_operations_match_MemoryStorage(int seed)
    {
        var rng = new Random(seed);
        var options = new StorageOptions
        {
            SegmentSize = rng.Next(0, 2) == 0 ? 4096 : 64 * 1024,
            EntryCacheBytes = rng.Next(0, 2) == 0 ? 0 : 2000,
            WriteBufferBytes = 4096,
        };
        using var dir = new TempDir();
        var model = new MemoryStorage();
        var wal = FileLogStorage.Open(dir.Path, options);
        try
        {
            ulong term = 1;
            for (var step = 0; step < 1500; step++)
            {
                var op = rng.Next(100);
                if (op < 40)
                {
                    // Mostly append at the end, sometimes overwrite a suffix.
                    var first = rng.Next(4) == 0 ? model.FirstIndex + (ulong)rng.NextInt64(0, (long)(model.LastIndex - model.FirstIndex + 2)) : model.LastIndex + 1;
                    if (rng.Next(10) == 0) term++;
                    var batch = Enumerable.Range(0, rng.Next(1, 9)).Select(i =>
                    {
                        var data = new byte[rng.Next(4) == 0 ? 0 : rng.Next(1, 300)];
                        rng.NextBytes(data);
                        return new Entry(first + (ulong)i, term, rng.Next(8) == 0 ? EntryType.Configuration : EntryType.Normal, data);
                    }).ToArray();
                    Both(s => s.Append(batch));
                }
                else if (op < 50)
                {
                    var hs = new HardState(term, rng.Next(3) == 0 ? null : "n" + rng.Next(5), (ulong)rng.Next(0, 100));
                    Both(s => s.SetHardState(hs));
                }
                else if (op < 65)
                {
                    Both(s => s.Sync());
                }
                else if (op < 71 && model.LastIndex > model.Snapshot.Index)
                {
                    var index = model.Snapshot.Index + (ulong)rng.NextInt64(0, (long)(model.LastIndex - model.Snapshot.Index) + 1);
                    if (index < model.FirstIndex - 1) continue;
                    var meta = new SnapshotMetadata(index, model.Term(index), Make.Config("a", "b" + rng.Next(3)));
                    Both(s => s.SetSnapshot(meta));
                }
                else if (op < 78)
                {
                    var upTo = Math.Min(model.LastIndex, model.Snapshot.Index);
                    if (upTo < model.FirstIndex) continue;
                    var index = model.FirstIndex + (ulong)rng.NextInt64(0, (long)(upTo - model.FirstIndex) + 1);
                    Both(s => s.Compact(index));
                }
                else if (op < 80)
                {
                    var meta = new SnapshotMetadata(model.LastIndex + (ulong)rng.Next(0, 20), term, Make.Config("x"));
                    Both(s => s.InstallSnapshot(meta));
                }
                else if (op < 86)
                {
                    wal.Dispose();
                    wal = FileLogStorage.Open(dir.Path, options);
                }
                else if (op < 90)
                {
                    // A process crash after the buffer reached the OS: nothing is lost.
                    wal.FlushToOs();
                    wal.SimulateCrash();
                    wal = FileLogStorage.Open(dir.Path, options);
                }
                else
                {
                    if (model.LastIndex < model.FirstIndex) continue;
                    var lo = model.FirstIndex + (ulong)rng.NextInt64(0, (long)(model.LastIndex - model.FirstIndex) + 1);
                    var hi = lo + (ulong)rng.NextInt64(0, (long)(model.LastIndex - lo) + 2);
                    var max = rng.Next(0, 2000);
                    List<Entry> a = [], b = [];
                    wal.GetEntries(lo, hi, max, a);
                    model.GetEntries(lo, hi, max, b);
                    Assert.Equal(Describe.Entries(b), Describe.Entries(a));
                }
                Assert.Equal(Describe.State(model), Describe.State(wal));
            }
        }
        finally
        {
            wal.Dispose();
        }

        void Both(Action<IRaftLogStorage> action)
        {
            action(model);
            action(wal);
        }
    }
}
