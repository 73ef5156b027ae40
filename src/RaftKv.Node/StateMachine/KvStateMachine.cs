using System.Buffers.Binary;
using System.Text;
using RaftKv.Raft;

namespace RaftKv.Node.StateMachine;

/// <summary>
/// The replicated key-value map. The raft loop applies committed entries to it strictly in log order; readers at
/// any thread take the lock briefly, so a multi-key set is never seen half-applied.
/// </summary>
/// <param name="reportMalformed">Told of each command skipped as malformed (once per entry, on every node alike).</param>
internal sealed class KvStateMachine(Action<string>? reportMalformed = null) : IStateMachine
{
    private readonly Dictionary<string, string> _map = new(StringComparer.Ordinal);
    private readonly Lock _lock = new();

    // Reused for every applied command (under the lock), so applying allocates only the strings it keeps.
    private readonly List<(string Key, string? Value)> _effects = [];

    /// <summary>Index of the last entry applied (or of the snapshot restored).</summary>
    public ulong AppliedIndex { get; private set; }

    public int Count
    {
        get { lock (_lock) return _map.Count; }
    }

    public string? Get(string key)
    {
        lock (_lock) return _map.TryGetValue(key, out var v) ? v : null;
    }

    /// <inheritdoc />
    public void Apply(in Entry entry)
    {
        if (entry.Type == EntryType.Normal && !entry.Data.IsEmpty) Apply(entry.Index, entry.Data.Span, reportMalformed);
        else Skip(entry.Index);
    }

    /// <summary>Applies one committed entry's command. A malformed command is skipped (and reported) on every node alike.</summary>
    public void Apply(ulong index, ReadOnlySpan<byte> command, Action<string>? onMalformed = null)
    {
        lock (_lock)
        {
            if (!command.IsEmpty)
            {
                try
                {
                    // Decode fully before changing anything, so a malformed command changes nothing.
                    _effects.Clear();
                    KvCommand.Decode(command, _effects);
                    foreach (var (k, v) in _effects)
                    {
                        if (v is null) _map.Remove(k);
                        else _map[k] = v;
                    }
                }
                catch (FormatException e)
                {
                    onMalformed?.Invoke($"entry {index}: {e.Message}");
                }
            }
            AppliedIndex = index;
        }
    }

    /// <summary>Marks an entry with no command (no-op, configuration) as applied.</summary>
    public void Skip(ulong index)
    {
        lock (_lock) AppliedIndex = index;
    }

    /// <summary>A point-in-time copy, cheap to take on the raft loop; written out later without holding anything.</summary>
    public KeyValuePair<string, string>[] Export()
    {
        lock (_lock) return [.. _map];
    }

    /// <inheritdoc />
    public IStateSnapshot TakeSnapshot() => new Copy(Export());

    private sealed class Copy(KeyValuePair<string, string>[] pairs) : IStateSnapshot
    {
        public void WriteTo(Stream output) => WriteSnapshot(pairs, output);
    }

    /// <summary>Writes a copy taken with <see cref="Export"/>: count, then length-prefixed UTF-8 pairs.</summary>
    public static void WriteSnapshot(KeyValuePair<string, string>[] pairs, Stream output)
    {
        Span<byte> header = stackalloc byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(header, pairs.Length);
        output.Write(header);
        var buffer = new byte[64 * 1024];
        foreach (var (k, v) in pairs)
        {
            WriteString(output, k, ref buffer);
            WriteString(output, v, ref buffer);
        }
    }

    /// <summary>Replaces the whole map with a snapshot's content.</summary>
    public void Restore(Stream input, ulong index)
    {
        var map = new Dictionary<string, string>(StringComparer.Ordinal);
        Span<byte> header = stackalloc byte[8];
        input.ReadExactly(header);
        var count = BinaryPrimitives.ReadInt64LittleEndian(header);
        if (count < 0) throw new InvalidDataException("bad snapshot pair count");
        var buffer = new byte[64 * 1024];
        for (long i = 0; i < count; i++)
        {
            var k = ReadString(input, ref buffer);
            map[k] = ReadString(input, ref buffer);
        }
        lock (_lock)
        {
            _map.Clear();
            foreach (var (k, v) in map) _map[k] = v;
            AppliedIndex = index;
        }
    }

    private static void WriteString(Stream output, string s, ref byte[] buffer)
    {
        var n = Encoding.UTF8.GetByteCount(s);
        if (buffer.Length < n + 4) buffer = new byte[n + 4];
        BinaryPrimitives.WriteInt32LittleEndian(buffer, n);
        Encoding.UTF8.GetBytes(s, buffer.AsSpan(4));
        output.Write(buffer, 0, n + 4);
    }

    private static string ReadString(Stream input, ref byte[] buffer)
    {
        Span<byte> len = stackalloc byte[4];
        input.ReadExactly(len);
        var n = BinaryPrimitives.ReadInt32LittleEndian(len);
        if (n < 0 || n > 1 << 30) throw new InvalidDataException("bad snapshot string length");
        if (buffer.Length < n) buffer = new byte[n];
        input.ReadExactly(buffer, 0, n);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }
}
