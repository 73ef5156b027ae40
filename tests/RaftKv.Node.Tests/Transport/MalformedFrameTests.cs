using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using RaftKv.Node.Tests.Runtime;
using RaftKv.Node.Transport;
using RaftKv.Raft;
using RaftKv.Storage.Snapshots;

namespace RaftKv.Node.Tests.Transport;

/// <summary>
/// Frames no correct peer sends, written over a real TCP connection to a real node (one voter, on disk). Each of these
/// used to end in "raft loop failed; the node stops"; now the node drops or skips them, says so in its log, and a
/// write succeeds afterwards.
/// </summary>
public sealed class MalformedFrameTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "raftkv-malformed-" + Guid.NewGuid().ToString("N"));
    private readonly LogCapture _log = new();
    private KvNode _node = null!;

    public async Task InitializeAsync()
    {
        _node = await KvNode.StartAsync(new NodeOptions
        {
            Id = "target",
            DataDirectory = _dir,
            RaftBindAddress = $"127.0.0.1:{FreePorts.Pick()}",
            HttpAdvertiseAddress = "127.0.0.1:1",
            Bootstrap = true,
            HeartbeatTimeout = TimeSpan.FromMilliseconds(50),
            ElectionTimeout = TimeSpan.FromMilliseconds(400),
            RequestTimeout = TimeSpan.FromSeconds(5),
            // The fake peer that took over in the skipped-command case cannot answer forwarded calls.
            ForwardToLeader = false,
        }, _log);
        await WriteSucceedsAsync("before");
    }

    public async Task DisposeAsync()
    {
        await _node.DisposeAsync();
        try
        {
            Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    public enum Frame
    {
        AppendThatSkipsAnIndex,
        InstallSnapshotWithoutTheSnapshotFlag,
        ConfigurationEntryWithBadBytes,
        ConfigurationEntryWithAnOverflowingLength,
    }

    [Theory]
    [InlineData(Frame.AppendThatSkipsAnIndex, "expected")]
    [InlineData(Frame.InstallSnapshotWithoutTheSnapshotFlag, "InstallSnapshot")]
    [InlineData(Frame.ConfigurationEntryWithBadBytes, "configuration entry")]
    [InlineData(Frame.ConfigurationEntryWithAnOverflowingLength, "configuration entry")]
    public async Task A_malformed_frame_is_dropped_and_logged_and_the_node_keeps_serving(Frame frame, string logged)
    {
        var status = await _node.GetStatusAsync();
        // A later term than the node's: a node that took the message at face value would follow this "leader".
        var term = status.Term + 10;
        var index = status.LastLogIndex;
        var message = frame switch
        {
            Frame.AppendThatSkipsAnIndex => Append(term, index, status.LastLogTerm, new Entry(index + 2, term, EntryType.Normal, default)),
            Frame.InstallSnapshotWithoutTheSnapshotFlag => new Message { Type = MessageType.InstallSnapshot, From = "evil", To = "target", Term = term },
            Frame.ConfigurationEntryWithBadBytes => Append(term, index, status.LastLogTerm, new Entry(index + 1, term, EntryType.Configuration, new byte[] { 1, 2, 3 })),
            _ => Append(term, index, status.LastLogTerm, new Entry(index + 1, term, EntryType.Configuration, OverflowingConfiguration())),
        };
        using var peer = await ConnectAsPeerAsync();
        await SendFrameAsync(peer, message);

        await NodeCluster.Eventually(() => Task.FromResult(_log.Messages.Any(l => l.Contains("dropped a malformed message from evil", StringComparison.Ordinal) && l.Contains(logged, StringComparison.Ordinal))),
            "the dropped frame to be logged");
        await WriteSucceedsAsync("after");
        Assert.DoesNotContain(_log.Messages, l => l.Contains("raft loop failed", StringComparison.Ordinal));
        Assert.Equal(status.Term, (await _node.GetStatusAsync()).Term);
    }

    /// <summary>
    /// A well-formed Append from a "leader" of a later term whose command cannot be decoded (a string length that made
    /// <c>pos + n</c> overflow): the node follows it, commits and skips the command, then elects itself again when the
    /// fake leader falls silent, and writes go on.
    /// </summary>
    [Fact]
    public async Task A_committed_command_that_cannot_be_decoded_is_skipped_and_the_node_keeps_serving()
    {
        var status = await _node.GetStatusAsync();
        var term = status.Term + 10;
        var index = status.LastLogIndex;
        var command = new byte[1 + 4 + 4 + 8];
        command[0] = 1; // set
        BinaryPrimitives.WriteInt32LittleEndian(command.AsSpan(1), 1);
        BinaryPrimitives.WriteInt32LittleEndian(command.AsSpan(5), int.MaxValue);
        var message = Append(term, index, status.LastLogTerm, new Entry(index + 1, term, EntryType.Normal, command));
        using var peer = await ConnectAsPeerAsync();
        await SendFrameAsync(peer, new Message
        {
            Type = message.Type, From = message.From, To = message.To, Term = message.Term, Index = message.Index,
            LogTerm = message.LogTerm, Entries = message.Entries, Commit = index + 1,
        });

        await NodeCluster.Eventually(() => Task.FromResult(_log.Messages.Any(l => l.Contains($"skipped malformed command: entry {index + 1}", StringComparison.Ordinal))),
            "the undecodable command to be skipped");
        await WriteSucceedsAsync("after");
        Assert.DoesNotContain(_log.Messages, l => l.Contains("raft loop failed", StringComparison.Ordinal));
    }

    /// <summary>
    /// A "leader" of a later term sends a snapshot whose data the state machine cannot restore. Stored and installed, it
    /// would replace the log, then fail to restore on the raft loop (and again at every restart); it is refused while
    /// it arrives instead, and the node keeps serving.
    /// </summary>
    [Fact]
    public async Task A_snapshot_the_state_machine_could_not_restore_is_refused_and_the_node_keeps_serving()
    {
        var status = await _node.GetStatusAsync();
        var port = ((TcpTransport)_node.Transport).LocalEndPoint.Port;
        var evilDir = _dir + "-evil";
        try
        {
            var metadata = new SnapshotMetadata(status.LastLogIndex + 10, status.Term + 10,
                new ClusterConfig([new Member("target", $"127.0.0.1:{port}", true) { HttpAddress = "127.0.0.1:1" }]));
            SnapshotInfo snapshot;
            using (var writer = SnapshotStore.Open(evilDir).Create(metadata))
            {
                var garbage = new byte[4096];
                BinaryPrimitives.WriteInt64LittleEndian(garbage, 1_000_000); // a million pairs announced, a few bytes sent
                writer.Stream.Write(garbage);
                snapshot = writer.Commit();
            }
            await using var evil = new TcpTransport("evil", "127.0.0.1:0", NullLogger.Instance, TransportTestKit.FastOptions());
            await evil.StartAsync(_ => { }, (_, s, ct) => s.CopyToAsync(Stream.Null, ct), CancellationToken.None);
            evil.SetPeers(new Dictionary<string, string> { ["target"] = $"127.0.0.1:{port}" });
            var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            evil.SendSnapshot(new Message { Type = MessageType.InstallSnapshot, From = "evil", To = "target", Term = metadata.Term, Snapshot = metadata }, snapshot, done.SetResult);

            Assert.False(await done.Task.WaitAsync(TimeSpan.FromSeconds(30)), "the node acknowledged a snapshot it cannot restore");
            Assert.Contains(_log.Messages, l => l.Contains("not a key-value snapshot", StringComparison.Ordinal));
            await WriteSucceedsAsync("after");
            Assert.DoesNotContain(_log.Messages, l => l.Contains("raft loop failed", StringComparison.Ordinal));
            Assert.Equal(status.Term, (await _node.GetStatusAsync()).Term);
        }
        finally
        {
            if (Directory.Exists(evilDir)) Directory.Delete(evilDir, recursive: true);
        }
    }

    [Fact]
    public async Task Repeated_malformed_frames_are_logged_once_per_interval()
    {
        var status = await _node.GetStatusAsync();
        using var peer = await ConnectAsPeerAsync();
        for (var i = 0; i < 50; i++)
        {
            await SendFrameAsync(peer, Append(status.Term + 1, status.LastLogIndex, status.LastLogTerm, new Entry(status.LastLogIndex + 5, status.Term + 1, EntryType.Normal, default)));
        }
        var transport = (TcpTransport)_node.Transport;
        await NodeCluster.Eventually(() => Task.FromResult(transport.MalformedMessagesDropped == 50), "all 50 frames to be dropped");
        // The interval is 10 s; the 50 frames took far less, unless the machine stalled for that long.
        var lines = _log.Messages.Count(l => l.Contains("dropped a malformed message", StringComparison.Ordinal));
        Assert.InRange(lines, 1, 2);
        await WriteSucceedsAsync("after");
    }

    private static byte[] OverflowingConfiguration()
    {
        var bytes = new byte[4 + 1 + 4 + 8];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, 1);
        bytes[4] = 1;
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(5), int.MaxValue);
        return bytes;
    }

    private static Message Append(ulong term, ulong index, ulong logTerm, params Entry[] entries) => new()
    {
        Type = MessageType.Append, From = "evil", To = "target", Term = term, Index = index, LogTerm = logTerm, Entries = entries,
    };

    private async Task WriteSucceedsAsync(string value)
    {
        // Retried: in the skipped-command case the node first waits out the fake leader, then elects itself again.
        await NodeCluster.Eventually(async () =>
        {
            try
            {
                await _node.SetAsync([KeyValuePair.Create("k", value)]);
                return await _node.GetAsync("k", ReadLevel.Linearizable) == value;
            }
            catch (NodeException e) when (e.Kind is NodeErrorKind.NotLeader or NodeErrorKind.NoLeader or NodeErrorKind.NotApplied)
            {
                return false;
            }
        }, $"a write of '{value}' to succeed", TimeSpan.FromSeconds(20));
    }

    private async Task<Socket> ConnectAsPeerAsync()
    {
        var transport = (TcpTransport)_node.Transport;
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, transport.LocalEndPoint.Port), TransportTestKit.Deadline());
        await s.SendAsync(Handshake.EncodeHello(ConnectionKind.Messages, "evil", "127.0.0.1:1"));
        var reply = new byte[Handshake.ReplyLength];
        await s.ReceiveExactlyAsync(reply, TransportTestKit.Deadline());
        Handshake.CheckReply(reply, "the node under test");
        return s;
    }

    private static async Task SendFrameAsync(Socket s, Message m)
    {
        var payload = MessageCodec.Encode(m);
        var frame = new byte[4 + payload.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(frame, (uint)payload.Length);
        payload.CopyTo(frame, 4);
        await s.SendAllAsync(frame, TransportTestKit.Deadline());
    }
}
