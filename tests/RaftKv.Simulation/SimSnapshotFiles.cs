using RaftKv.Node.Runtime;
using RaftKv.Node.StateMachine;
using RaftKv.Raft;

namespace RaftKv.Simulation;

/// <summary>
/// A node's snapshot store in memory. <see cref="Stored"/> survives crashes (as files that were written, synced and
/// renamed do); a snapshot being written takes a random time, may fail, and is lost if the node crashes meanwhile.
/// </summary>
internal sealed class SimSnapshotFiles
{
    /// <summary>Durable snapshots by index: taken here, or received from a leader (the transport stores them before the core hears of them).</summary>
    public Dictionary<ulong, byte[]> Stored { get; } = [];

    /// <summary>The writer for one life of the node: what it starts dies with it.</summary>
    /// <param name="logSnapshot">The index of the snapshot the node's log records (always kept: a restart restores it).</param>
    public Writer ForLife(Random rng, SimOptions options, Func<ulong> logSnapshot) => new(this, rng, options, logSnapshot);

    internal sealed class Writer(SimSnapshotFiles files, Random rng, SimOptions options, Func<ulong> logSnapshot) : ISnapshotFiles
    {
        private readonly List<(SnapshotMetadata Meta, byte[] Data, long Due, bool Fails)> _writing = [];

        public long Now { get; set; }

        public long Failures { get; private set; }

        /// <summary>Whether writes may fail (not once the faults stop).</summary>
        public bool Faulty { get; set; }

        public Stream OpenReceived(ulong index) =>
            files.Stored.TryGetValue(index, out var data)
                ? new MemoryStream(data, writable: false)
                : throw new InvalidOperationException($"installed snapshot {index} is not in the snapshot store");

        public void ReleaseReceived(ulong index)
        {
            // Keep the newest at or below index, the log's, and everything above.
            var keep = files.Stored.Keys.Where(k => k <= index).DefaultIfEmpty().Max();
            var inLog = logSnapshot();
            foreach (var k in files.Stored.Keys.Where(k => k < keep && k != inLog).ToList()) files.Stored.Remove(k);
        }

        public void StartWrite(SnapshotMetadata meta, IStateSnapshot view)
        {
            // The view is a point-in-time copy: written now or later, the bytes are the same.
            using var buffer = new MemoryStream();
            view.WriteTo(buffer);
            var fails = Faulty && options.SnapshotWriteFailureRate > 0 && rng.NextDouble() < options.SnapshotWriteFailureRate;
            _writing.Add((meta, buffer.ToArray(), Now + rng.Next(options.MaxSnapshotWriteDelay + 1), fails));
        }

        /// <summary>Stores the writes due by <paramref name="now"/> and tells the processor, in the order they were started.</summary>
        public void CompleteDue(long now, ReadyProcessor processor)
        {
            while (_writing.Count > 0 && _writing[0].Due <= now)
            {
                var (meta, data, _, fails) = _writing[0];
                _writing.RemoveAt(0);
                if (fails)
                {
                    Failures++;
                    processor.SnapshotWritten(meta, new IOException("no space left on device (simulated)"));
                    continue;
                }
                files.Stored[meta.Index] = data;
                processor.SnapshotWritten(meta, null);
            }
        }
    }
}
