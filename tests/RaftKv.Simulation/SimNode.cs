using RaftKv.Raft;
using System.Text;

namespace RaftKv.Simulation;

/// <summary>A client write: set Key to a value unique to this operation.</summary>
public sealed record WriteOp(long Id, string Key, string Value, long Start);

/// <summary>A client read: the value of Key must reflect every write acknowledged before Start (MinIndex).</summary>
public sealed record ReadOp(long Id, string Key, long Start, ulong MinIndex);

/// <summary>A background sync in async mode: at <see cref="Due"/> the disk image becomes durable and the messages leave.</summary>
public sealed class PendingSync(long due, MemoryStorage image, List<Message> messages, ulong index)
{
    public long Due { get; } = due;
    public MemoryStorage Image { get; } = image;
    public List<Message> Messages { get; } = messages;

    /// <summary>The last index written when the sync began, capped at the first entry replaced since.</summary>
    public ulong Index { get; set; } = index;
}

/// <summary>
/// One simulated server: its disk (what survives a crash: the log storage and the snapshot bytes), and, while it
/// is up, its core, its key-value state machine and the client requests it is handling.
/// </summary>
public sealed class SimNode(string id, IRaftLogStorage disk)
{
    public string Id { get; } = id;

    /// <summary>
    /// Which life of this server is running: drawn when its storage is created (at founding and after each wipe), as
    /// raftkvd does; see <see cref="Member.Incarnation"/>.
    /// </summary>
    public ulong Incarnation { get; set; }

    /// <summary>How many times its storage was created (1 + wipes).</summary>
    public int Lives { get; set; } = 1;

    /// <summary>Durable: survives crashes. Written only when a Ready is persisted.</summary>
    public IRaftLogStorage Disk { get; set; } = disk;

    /// <summary>
    /// Async mode: what of <see cref="Disk"/> has been synced (a crash puts this back in its place), and the syncs in
    /// progress, oldest first, each with the messages that wait for it.
    /// </summary>
    public MemoryStorage? SyncedDisk { get; set; }

    public Queue<PendingSync> PendingSyncs { get; } = new();

    /// <summary>
    /// Sync mode: the hard state as of the last sync. A Ready that only moves the commit index is written without a
    /// sync (<see cref="Ready.MustSync"/>), so a crash may or may not keep it.
    /// </summary>
    public HardState SyncedHardState { get; set; }

    /// <summary>Durable snapshot bytes matching Disk.Snapshot.</summary>
    public byte[] SnapshotData { get; set; } = [];

    public RaftCore? Core { get; set; }
    public bool Alive => Core is not null;

    public Dictionary<string, string> Kv { get; } = new(StringComparer.Ordinal);
    public ulong Applied { get; set; }

    /// <summary>Snapshot bytes received with InstallSnapshot messages, by snapshot index, until the core installs one.</summary>
    public Dictionary<ulong, byte[]> IncomingSnapshots { get; } = [];

    public ProposalTracker<WriteOp> Proposals { get; set; } = new();
    public Dictionary<ulong, ReadOp> Reads { get; } = [];
    public List<(ReadOp Op, ulong Index)> ReadsAwaitingApply { get; } = [];

    /// <summary>Indexes of configuration entries in the durable log (kept by the simulator, independently of the core).</summary>
    public SortedSet<ulong> ConfigEntryIndexes { get; } = [];

    // Monotonicity watermarks: within one life for volatile indexes, across restarts for the durable commit (a wipe
    // resets them all: that storage is gone).
    public ulong LastCommitSeen { get; set; }
    public ulong LastAppliedSeen { get; set; }
    public ulong DurableCommit { get; set; }
    public int TickOffset { get; set; }

    public static byte[] EncodeCommand(string key, string value) => Encoding.UTF8.GetBytes(key + "=" + value);

    public static (string Key, string Value) DecodeCommand(ReadOnlySpan<byte> data)
    {
        var s = Encoding.UTF8.GetString(data);
        var eq = s.IndexOf('=');
        return (s[..eq], s[(eq + 1)..]);
    }

    public byte[] SerializeState() =>
        Encoding.UTF8.GetBytes(string.Join("\n", Kv.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Key + "=" + p.Value)));

    public void RestoreState(byte[] data)
    {
        Kv.Clear();
        if (data.Length == 0) return;
        foreach (var line in Encoding.UTF8.GetString(data).Split('\n'))
        {
            var (k, v) = DecodeCommand(Encoding.UTF8.GetBytes(line));
            Kv[k] = v;
        }
    }
}
