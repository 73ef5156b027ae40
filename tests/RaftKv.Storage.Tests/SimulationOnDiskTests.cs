using RaftKv.Simulation;

namespace RaftKv.Storage.Tests;

/// <summary>
/// The core's cluster simulator run on real files: every node's log lives in a <see cref="FileLogStorage"/> in a
/// temp directory, and a crash drops what the WAL still buffers (as a killed process would: an unsynced hard state
/// with a new commit index among it) and reopens what reached the OS. Shows the core and the WAL fit together.
/// </summary>
public sealed class SimulationOnDiskTests
{
    [Fact]
    public void RandomizedSchedules_OnFileLogStorage_KeepEverySafetyProperty()
    {
        const int seeds = 200;
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        long crashes = 0;
        Parallel.For(1, seeds + 1, new ParallelOptions { MaxDegreeOfParallelism = Environment.ProcessorCount }, seed =>
        {
            using var dir = new TempDir();
            var open = new Dictionary<string, FileLogStorage>();
            var options = new StorageOptions { SegmentSize = 16 * 1024 };
            try
            {
                var stats = new SimCluster(seed,
                    openDisk: id => open[id] = FileLogStorage.Open(dir.Combine(id, "wal"), options),
                    crashDisk: id => open[id].SimulateCrash()).Run();
                Interlocked.Add(ref crashes, stats.Crashes);
            }
            catch (Exception e)
            {
                failures.Add($"seed {seed}: {e.Message}");
            }
            finally
            {
                foreach (var s in open.Values) s.Dispose();
            }
        });
        Assert.Empty(failures);
        Assert.True(crashes > seeds / 10, $"only {crashes} crashes: the schedules did not exercise reopening");
    }
}
