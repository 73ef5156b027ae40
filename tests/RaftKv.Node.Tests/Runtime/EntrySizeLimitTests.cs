using RaftKv.Node.StateMachine;
using RaftKv.Node.Transport;
using RaftKv.Raft;

namespace RaftKv.Node.Tests.Runtime;

/// <summary>
/// Sizes are limits, not wedges: a write the transport could never carry is refused when proposed, and an Append never
/// grows past a frame. Three nodes over real TCP with a 64 KiB frame, so "too large" is cheap to reach.
/// </summary>
public sealed class EntrySizeLimitTests : IAsyncLifetime
{
    private const int FrameSize = 64 * 1024;
    private static readonly TimeSpan Deadline = TimeSpan.FromSeconds(30);
    private readonly string _root = Path.Combine(Path.GetTempPath(), "raftkv-size-tests", Guid.NewGuid().ToString("N"));
    private readonly List<KvNode> _nodes = [];

    public async Task InitializeAsync()
    {
        var first = await KvNode.StartAsync(Options("n0", bootstrap: true));
        _nodes.Add(first);
        await Until(async () => (await first.GetStatusAsync()).Role == Role.Leader, "n0 leads");
        for (var i = 1; i < 3; i++)
        {
            var options = Options("n" + i, bootstrap: false);
            _nodes.Add(await KvNode.StartAsync(options));
            await first.JoinAsync(new JoinRequest(options.Id, options.RaftAddress, ""));
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var node in _nodes) await node.DisposeAsync();
        try
        {
            Directory.Delete(_root, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task A_write_larger_than_an_entry_is_refused_on_any_node_and_the_cluster_keeps_writing()
    {
        // A value as large as the frame: once in the log, no Append could ever carry it.
        var tooLarge = new string('x', FrameSize);
        foreach (var node in _nodes)
        {
            var e = await Assert.ThrowsAsync<NodeException>(() => node.SetAsync([KeyValuePair.Create("k", tooLarge)]));
            Assert.Equal(NodeErrorKind.TooLarge, e.Kind);
            Assert.Contains("split it", e.Message);
        }
        var oneByteOver = await Assert.ThrowsAsync<NodeException>(
            () => _nodes[0].SetAsync([KeyValuePair.Create("k", new string('x', (int)EntryLimits.MaxValueBytes(FrameSize, 1) + 1))]));
        Assert.Equal(NodeErrorKind.TooLarge, oneByteOver.Kind);
        var longKey = await Assert.ThrowsAsync<NodeException>(() => _nodes[1].DeleteAsync(new string('x', (int)EntryLimits.MaxEntryBytes(FrameSize))));
        Assert.Equal(NodeErrorKind.TooLarge, longKey.Kind);

        // Nothing of it reached the log: small writes through a follower commit and reach every node.
        for (var i = 0; i < 5; i++) await _nodes[2].SetAsync([KeyValuePair.Create("after" + i, "v" + i)]);
        await EveryNodeHas("after4", "v4");
        Assert.Null(await _nodes[0].GetAsync("k", ReadLevel.Linearizable));
    }

    [Fact]
    public async Task A_write_of_exactly_the_largest_entry_replicates_to_every_node()
    {
        var value = new string('y', (int)EntryLimits.MaxValueBytes(FrameSize, 3));
        Assert.Equal(EntryLimits.MaxEntryBytes(FrameSize), KvCommand.EncodeSet([KeyValuePair.Create("big", value)]).Length);
        await _nodes[1].SetAsync([KeyValuePair.Create("big", value)]); // a follower forwards it to the leader
        await EveryNodeHas("big", value);
    }

    [Fact]
    public async Task Many_entries_written_at_once_are_batched_within_a_frame()
    {
        // 24 writes of 20 KiB at once: with a batch budget larger than the frame, Appends of several of them are dropped
        // by the transport for good and the followers never catch up.
        var value = new string('z', 20 * 1024);
        await Task.WhenAll(Enumerable.Range(0, 24).Select(i => _nodes[0].SetAsync([KeyValuePair.Create("batch" + i, value)])));
        for (var i = 0; i < 24; i++) await EveryNodeHas("batch" + i, value);
    }

    [Fact]
    public void The_largest_entry_fits_a_frame_with_the_longest_ids()
    {
        // The reserve must cover an Append's fields at their largest: both ids at the id limit, every varint at 10 bytes.
        var id = new string('\u00e9', NodeIds.MaxBytes / 2);
        var entry = new Entry(ulong.MaxValue, ulong.MaxValue, EntryType.Normal, new byte[EntryLimits.MaxEntryBytes(FrameSize)]);
        var append = new Message
        {
            Type = MessageType.Append, From = id, To = id, Term = ulong.MaxValue, LogTerm = ulong.MaxValue, Index = ulong.MaxValue,
            Commit = ulong.MaxValue, RejectHint = ulong.MaxValue, Context = ulong.MaxValue, Entries = new[] { entry },
        };
        Assert.True(MessageCodec.GetEncodedLength(append) <= FrameSize);

        // A full batch of small entries (the core counts each as its data + 24 bytes) fits as well.
        var budget = EntryLimits.AppendBatchBytes(FrameSize);
        var small = Enumerable.Range(0, (int)(budget / 24)).Select(_ => new Entry(ulong.MaxValue, ulong.MaxValue, EntryType.Normal, Array.Empty<byte>())).ToArray();
        Assert.True(MessageCodec.GetEncodedLength(new Message { Type = MessageType.Append, From = id, To = id, Entries = small }) <= FrameSize);
    }

    [Fact]
    public async Task A_frame_too_small_for_any_entry_is_refused_at_start()
    {
        var options = Options("tiny", bootstrap: true) with { Transport = new TransportOptions { MaxFrameSize = 1024, SnapshotChunkSize = 512 } };
        var e = await Assert.ThrowsAsync<ArgumentOutOfRangeException>(() => KvNode.StartAsync(options));
        Assert.Contains("frame limit", e.Message);
    }

    private NodeOptions Options(string id, bool bootstrap) => new()
    {
        Id = id,
        DataDirectory = Path.Combine(_root, id),
        RaftBindAddress = $"127.0.0.1:{FreePorts.Pick()}",
        HttpAdvertiseAddress = "",
        Bootstrap = bootstrap,
        HeartbeatTimeout = TimeSpan.FromMilliseconds(50),
        ElectionTimeout = TimeSpan.FromMilliseconds(500),
        RequestTimeout = TimeSpan.FromSeconds(5),
        Transport = new TransportOptions { MaxFrameSize = FrameSize, SnapshotChunkSize = 16 * 1024 },
    };

    private async Task EveryNodeHas(string key, string value)
    {
        foreach (var node in _nodes)
        {
            await Until(async () => await node.GetAsync(key, ReadLevel.None) == value, $"{node.Id} has {key}");
        }
    }

    private static async Task Until(Func<Task<bool>> condition, string what)
    {
        var deadline = DateTime.UtcNow + Deadline;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"not within {Deadline}: {what}");
            await Task.Delay(20);
        }
    }
}
