using System.Buffers.Binary;
using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using RaftKv.Node.Transport;
using RaftKv.Raft;
using RaftKv.Storage;
using RaftKv.Storage.Snapshots;
using Xunit.Abstractions;
using static RaftKv.Node.Tests.Transport.TransportTestKit;

namespace RaftKv.Node.Tests.Transport;

public sealed class TcpTransportTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "raftkv-transport-tests", Guid.NewGuid().ToString("N"));

    private TestLogger Log(string name) => new(output, name + ": ");

    private Task<TestNode> Start(string id, TransportOptions? options = null, string listen = "127.0.0.1:0", string? advertise = null) => TestNode.Start(id, Log(id), options, listen, advertise);

    private static Dictionary<string, string> Peers(params TestNode[] nodes) => nodes.ToDictionary(n => n.Id, n => n.Address);

    public void Dispose()
    {
        try
        {
            if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    [Fact]
    public async Task Binds_port_zero_and_reports_the_actual_endpoint()
    {
        await using var t = new TcpTransport("a", "127.0.0.1:0", Log("a"));
        Assert.NotEqual(0, t.LocalEndPoint.Port);
        Assert.Equal($"127.0.0.1:{t.LocalEndPoint.Port}", t.LocalAddress);
        Assert.Throws<FormatException>(() => new TcpTransport("a", "no-port", Log("a")));
    }

    [Fact]
    public async Task A_second_transport_cannot_bind_the_same_port()
    {
        // Two nodes on one port would each get some of the peers' connections (SO_REUSEPORT): the second must fail.
        await using var first = new TcpTransport("a", "127.0.0.1:0", Log("a"));
        var e = Assert.Throws<SocketException>(() => new TcpTransport("b", first.LocalAddress, Log("b")));
        Assert.Equal(SocketError.AddressAlreadyInUse, e.SocketErrorCode);
    }

    [Fact]
    public async Task A_host_name_listen_address_works_and_peers_may_use_names()
    {
        await using var b = await Start("b", listen: "localhost:0");
        await using var a = await Start("a");
        a.Transport.SetPeers(new Dictionary<string, string> { ["b"] = $"localhost:{b.Transport.LocalEndPoint.Port}" });
        var m = new Message { From = "a", To = "b", Term = 1 };
        Assert.True(a.Transport.Send(m));
        AssertSame(m, await b.Receive());
    }

    [Fact]
    public async Task Messages_of_every_type_flow_both_ways()
    {
        await using var a = await Start("a");
        await using var b = await Start("b");
        a.Transport.SetPeers(Peers(b));
        b.Transport.SetPeers(Peers(a));
        var rng = new Random(11);
        // Snapshots travel on connections of their own; everything else on this one, as a correct peer sends it.
        var types = AllTypes.Where(t => t != MessageType.InstallSnapshot).ToList();
        var toB = types.SelectMany(t => Enumerable.Range(0, 3).Select(_ => WellFormed(RandomMessage(rng, t, "a", "b", maxEntries: 8, maxData: 4096)))).ToList();
        var toA = types.SelectMany(t => Enumerable.Range(0, 3).Select(_ => WellFormed(RandomMessage(rng, t, "b", "a", maxEntries: 8, maxData: 4096)))).ToList();

        foreach (var m in toB) Assert.True(a.Transport.Send(m));
        foreach (var m in toA) Assert.True(b.Transport.Send(m));

        foreach (var m in toB) AssertSame(m, await b.Receive());
        foreach (var m in toA) AssertSame(m, await a.Receive());
    }

    [Fact]
    public async Task A_node_answers_a_caller_that_is_not_in_its_configuration()
    {
        // b has just been added to a's cluster: a knows b, b knows nobody yet. b learns a's address from the handshake.
        await using var a = await Start("a");
        await using var b = await Start("b");
        a.Transport.SetPeers(Peers(b));
        Assert.False(b.Transport.Send(new Message { From = "b", To = "a" }));

        var append = new Message { Type = MessageType.Append, From = "a", To = "b", Term = 2 };
        Assert.True(a.Transport.Send(append));
        AssertSame(append, await b.Receive());
        var response = new Message { Type = MessageType.AppendResponse, From = "b", To = "a", Term = 2, Index = 7 };
        Assert.True(b.Transport.Send(response));
        AssertSame(response, await a.Receive());
        var answering = b.Transport.FindPeer("a")!;
        Assert.Equal(a.Address, answering.Address);

        // When the configuration reaches b, the connection it already has is kept.
        b.Transport.SetPeers(Peers(a));
        Assert.Same(answering, b.Transport.FindPeer("a"));
        Assert.True(b.Transport.Send(response));
        AssertSame(response, await a.Receive());
    }

    [Fact]
    public async Task A_wildcard_advertised_host_is_replaced_by_the_callers_address()
    {
        var port = FreePorts.Pick();
        await using var a = await Start("a", listen: $"127.0.0.1:{port}", advertise: $"0.0.0.0:{port}");
        await using var b = await Start("b");
        a.Transport.SetPeers(Peers(b));
        Assert.True(a.Transport.Send(new Message { From = "a", To = "b" }));
        await b.Receive();
        Assert.True(b.Transport.Send(new Message { From = "b", To = "a" }));
        await a.Receive();
        Assert.Equal($"127.0.0.1:{port}", b.Transport.FindPeer("a")!.Address);
    }

    [Fact]
    public async Task Many_messages_arrive_in_order_on_one_connection()
    {
        const int count = 20_000;
        await using var a = await Start("a", FastOptions(queueCapacity: count));
        await using var b = await Start("b");
        a.Transport.SetPeers(Peers(b));
        var payload = new byte[40];
        for (var i = 0; i < count; i++)
        {
            var m = new Message { Type = MessageType.Append, From = "a", To = "b", Term = 1, Index = (ulong)i, Entries = new[] { new Entry((ulong)i + 1, 1, EntryType.Normal, payload) } };
            Assert.True(a.Transport.Send(m));
        }
        for (var i = 0; i < count; i++)
        {
            var got = await b.Receive();
            Assert.Equal((ulong)i, got.Index);
        }
        Assert.Equal(0, a.Transport.FindPeer("b")!.Dropped);
    }

    [Fact]
    public async Task A_burst_larger_than_the_socket_buffer_arrives_whole_and_in_order()
    {
        // Once connected, a small message to an idle connection is written straight from the caller's thread. A burst
        // of 28 MiB fills the kernel's buffers mid-frame: the rest of that frame and everything after it must go
        // through the writer, in order, and afterwards direct writes must resume.
        await using var a = await Start("a", FastOptions(queueCapacity: 1024));
        await using var b = await Start("b");
        a.Transport.SetPeers(Peers(b));
        Assert.True(a.Transport.Send(new Message { Type = MessageType.Heartbeat, From = "a", To = "b", Index = 999 }));
        Assert.Equal(999UL, (await b.Receive()).Index);
        var peer = a.Transport.FindPeer("b")!;

        const int count = 600;
        var payloads = new byte[count][];
        for (var i = 0; i < count; i++)
        {
            payloads[i] = new byte[48 << 10];
            Random.Shared.NextBytes(payloads[i]);
        }
        for (var i = 0; i < count; i++)
        {
            var m = new Message { Type = MessageType.Append, From = "a", To = "b", Term = 1, Index = (ulong)i, Entries = new[] { new Entry((ulong)i + 1, 1, EntryType.Normal, payloads[i]) } };
            Assert.True(a.Transport.Send(m));
        }
        output.WriteLine($"direct sends {peer.DirectSends}, partial ones handed to the writer {peer.RemaindersHandedOver}");
        for (var i = 0; i < count; i++)
        {
            var got = await b.Receive();
            Assert.Equal((ulong)i, got.Index);
            Assert.True(got.Entries.Span[0].Data.Span.SequenceEqual(payloads[i]), $"message {i} arrived with other bytes");
        }

        // Direct writes resume once the writer has caught up (it may still be finishing when the last frame lands).
        var before = peer.DirectSends;
        var deadline = Stopwatch.StartNew();
        var next = 1000UL;
        while (peer.DirectSends == before)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(10), "no direct send after the burst");
            Assert.True(a.Transport.Send(new Message { Type = MessageType.Heartbeat, From = "a", To = "b", Index = next }));
            Assert.Equal(next++, (await b.Receive()).Index);
        }
        Assert.Equal(0, peer.Dropped);
    }

    /// <summary>
    /// A raft peer that answers the handshake and then reads nothing, so the sender's socket buffers fill up. Its
    /// listener takes a small receive buffer (accepted sockets inherit it), so that happens after a few hundred KiB.
    /// </summary>
    private static Socket NonReadingListener()
    {
        var listener = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveBufferSize = 4096 };
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen(4);
        return listener;
    }

    private static async Task<Socket> AcceptAndStopReading(Socket listener)
    {
        var s = await listener.AcceptAsync(Deadline());
        var fixedPart = new byte[Handshake.HelloFixedLength];
        await s.ReceiveExactlyAsync(fixedPart, Deadline());
        var rest = BinaryPrimitives.ReadUInt16LittleEndian(fixedPart.AsSpan(8)) + BinaryPrimitives.ReadUInt16LittleEndian(fixedPart.AsSpan(10));
        await s.ReceiveExactlyAsync(new byte[rest], Deadline());
        await s.SendAllAsync(Handshake.EncodeReply(Handshake.Accepted), Deadline());
        return s;
    }

    /// <summary>
    /// Once the writer is idle (a heartbeat goes out directly), sends 48 KiB appends (small enough to go directly too)
    /// until one is only partly taken by the kernel.
    /// </summary>
    private static async Task SendUntilARemainderIsPending(TestNode a, PeerConnection peer)
    {
        var deadline = Stopwatch.StartNew();
        while (peer.DirectSends == 0)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(10), "no direct send on the new connection");
            Assert.True(a.Transport.Send(new Message { Type = MessageType.Heartbeat, From = "a", To = "b" }));
            await Task.Delay(10);
        }
        var payload = new byte[48 << 10];
        for (ulong i = 0; peer.RemaindersHandedOver == 0; i++)
        {
            Assert.True(i < 5000, "the kernel never refused part of a direct write");
            Assert.True(a.Transport.Send(new Message { Type = MessageType.Append, From = "a", To = "b", Term = 1, Index = i, Entries = new[] { new Entry(i + 1, 1, EntryType.Normal, payload) } }));
        }
    }

    [Fact]
    public async Task A_peer_that_dies_with_part_of_a_frame_unsent_gets_a_clean_new_connection()
    {
        using var listener = NonReadingListener();
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        await using var a = await Start("a", FastOptions());
        a.Transport.SetPeers(new Dictionary<string, string> { ["b"] = $"127.0.0.1:{port}" });
        Assert.True(a.Transport.Send(new Message { Type = MessageType.Heartbeat, From = "a", To = "b" }));
        var stuck = await AcceptAndStopReading(listener);
        var peer = a.Transport.FindPeer("b")!;
        await WaitUntil(() => peer.IsConnected, "the connection to the non-reading peer");
        await SendUntilARemainderIsPending(a, peer);

        // The peer dies with the unsent rest of a frame (and maybe more) waiting: reset the connection, free the port.
        stuck.LingerState = new LingerOption(true, 0);
        stuck.Close();
        listener.Close();
        await WaitUntil(() => !peer.IsConnected, "the sender to notice the reset");

        // A real node takes the address: what it receives must be whole frames from the start of the new connection
        // (a leftover piece of the old frame would make it fail to decode and drop the connection).
        await using var b = await Start("b", listen: $"127.0.0.1:{port}");
        var deadline = Stopwatch.StartNew();
        Message? first = null;
        for (var n = 10_000UL; first is null; n++)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(10), "nothing arrived on the new connection");
            a.Transport.Send(new Message { Type = MessageType.Heartbeat, From = "a", To = "b", Index = n });
            first = await b.TryReceive(100);
        }
        Assert.Equal(MessageType.Heartbeat, first.Type);
        Assert.True(first.Index >= 10_000, $"a message from before the reset arrived: {first}");
        // Direct sends work again on the new connection, and frames keep arriving whole and in order.
        var directBefore = peer.DirectSends;
        var next = first.Index + 1;
        while (await b.TryReceive(200) is { } late) next = late.Index + 1; // resends that were already in flight
        for (var k = 0; k < 50; k++)
        {
            var m = new Message { Type = MessageType.Append, From = "a", To = "b", Term = 1, Index = next + (ulong)k, Entries = new[] { new Entry(next + (ulong)k + 1, 1, EntryType.Normal, new byte[] { (byte)k }) } };
            Assert.True(a.Transport.Send(m));
            AssertSame(m, await b.Receive());
        }
        Assert.True(peer.DirectSends > directBefore, "no direct send on the new connection");
    }

    [Fact]
    public async Task Removing_a_peer_with_part_of_a_frame_unsent_stops_its_writer_at_once()
    {
        using var listener = NonReadingListener();
        var port = ((IPEndPoint)listener.LocalEndPoint!).Port;
        // A write timeout far beyond the test's deadline: only Stop can end the writer's blocked send.
        var fast = FastOptions();
        await using var a = await Start("a", new TransportOptions
        {
            SendQueueCapacity = fast.SendQueueCapacity,
            ReconnectMinDelay = fast.ReconnectMinDelay,
            ReconnectMaxDelay = fast.ReconnectMaxDelay,
            ShutdownTimeout = fast.ShutdownTimeout,
            WriteTimeout = TimeSpan.FromMinutes(5),
        });
        a.Transport.SetPeers(new Dictionary<string, string> { ["b"] = $"127.0.0.1:{port}" });
        Assert.True(a.Transport.Send(new Message { Type = MessageType.Heartbeat, From = "a", To = "b" }));
        using var stuck = await AcceptAndStopReading(listener);
        var peer = a.Transport.FindPeer("b")!;
        await WaitUntil(() => peer.IsConnected, "the connection to the non-reading peer");
        await SendUntilARemainderIsPending(a, peer);

        a.Transport.SetPeers(new Dictionary<string, string>());
        await peer.Completion.WaitAsync(TimeSpan.FromSeconds(5));
        Assert.False(peer.IsConnected);
        Assert.Null(a.Transport.FindPeer("b"));
        // The stopped connection takes nothing more, directly or queued.
        var directBefore = peer.DirectSends;
        Assert.False(peer.TryEnqueue(new Message { Type = MessageType.Heartbeat, From = "a", To = "b" }));
        Assert.Equal(directBefore, peer.DirectSends);
    }

    [Fact]
    public async Task Messages_flow_once_a_peer_that_was_down_starts()
    {
        var port = FreePorts.Pick();
        await using var a = await Start("a");
        a.Transport.SetPeers(new Dictionary<string, string> { ["b"] = $"127.0.0.1:{port}" });
        var m = new Message { Type = MessageType.Heartbeat, From = "a", To = "b", Term = 5 };

        // Nobody listens: the attempt fails and what was queued is dropped, without the caller noticing anything but Send.
        Assert.True(a.Transport.Send(m));
        await WaitUntil(() => a.Transport.FindPeer("b")!.Dropped > 0, "the message queued for a dead peer to be dropped");

        await using var b = await Start("b", listen: $"127.0.0.1:{port}");
        // Like Raft, resend until it gets through; the reconnect backoff (at most 200 ms here) bounds the wait.
        var deadline = Stopwatch.StartNew();
        Message? got = null;
        while (got is null)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(10), "no message after the peer started");
            a.Transport.Send(m);
            got = await b.TryReceive(100);
        }
        AssertSame(m, got);
        Assert.True(a.Transport.FindPeer("b")!.IsConnected);
    }

    [Fact]
    public async Task A_full_queue_drops_instead_of_blocking()
    {
        // A peer that accepts TCP connections (the kernel does, from the backlog) but never answers the handshake:
        // the writer is stuck connecting, exactly like a peer that hangs.
        using var hole = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        hole.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        hole.Listen(1);
        var options = new TransportOptions { SendQueueCapacity = 8, ConnectTimeout = TimeSpan.FromSeconds(30), ShutdownTimeout = TimeSpan.FromSeconds(3) };
        await using var a = await Start("a", options);
        a.Transport.SetPeers(new Dictionary<string, string> { ["hole"] = $"127.0.0.1:{((IPEndPoint)hole.LocalEndPoint!).Port}" });

        var m = new Message { Type = MessageType.Append, From = "a", To = "hole" };
        var watch = Stopwatch.StartNew();
        var accepted = 0;
        for (var i = 0; i < 10_000; i++) if (a.Transport.Send(m)) accepted++;
        watch.Stop();

        Assert.Equal(8, accepted);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(2), $"10 000 sends to a stuck peer took {watch.Elapsed}");
        Assert.Equal(10_000 - 8, a.Transport.FindPeer("hole")!.Dropped);
    }

    [Fact]
    public async Task Sends_to_unknown_peers_or_after_dispose_are_refused()
    {
        var b = await Start("b");
        var a = await Start("a");
        a.Transport.SetPeers(new Dictionary<string, string> { ["b"] = b.Address, ["a"] = a.Address, ["bad"] = "not an address" });
        Assert.False(a.Transport.Send(new Message { From = "a", To = "nobody" }));
        Assert.False(a.Transport.Send(new Message { From = "a", To = "a" }));
        Assert.False(a.Transport.Send(new Message { From = "a", To = "bad" }));
        Assert.True(a.Transport.Send(new Message { From = "a", To = "b" }));
        await b.Receive();

        await a.DisposeAsync();
        await a.DisposeAsync(); // twice is fine
        Assert.False(a.Transport.Send(new Message { From = "a", To = "b" }));
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Transport.SendSnapshot(new Message { Type = MessageType.InstallSnapshot, From = "a", To = "b" }, new SnapshotInfo(SnapshotMetadata.Empty, "none", 0), done.SetResult);
        Assert.False(await done.Task.WaitAsync(Deadline()));
        await b.DisposeAsync();
    }

    [Fact]
    public async Task SetPeers_closes_removed_peers_and_follows_address_changes()
    {
        await using var a = await Start("a");
        await using var b1 = await Start("b");
        await using var b2 = await Start("b"); // node b, restarted on another port
        a.Transport.SetPeers(Peers(b1));
        var first = new Message { From = "a", To = "b", Index = 1 };
        Assert.True(a.Transport.Send(first));
        AssertSame(first, await b1.Receive());
        var old = a.Transport.FindPeer("b")!;

        a.Transport.SetPeers(Peers(b2));
        await old.Completion.WaitAsync(Deadline());
        Assert.False(old.IsConnected);
        var second = new Message { From = "a", To = "b", Index = 2 };
        Assert.True(a.Transport.Send(second));
        AssertSame(second, await b2.Receive());

        var current = a.Transport.FindPeer("b")!;
        a.Transport.SetPeers(new Dictionary<string, string>());
        await current.Completion.WaitAsync(Deadline());
        Assert.Null(a.Transport.FindPeer("b"));
        Assert.False(a.Transport.Send(new Message { From = "a", To = "b" }));
        Assert.Null(await b1.TryReceive(50));
    }

    [Fact]
    public async Task A_snapshot_of_a_few_megabytes_arrives_byte_exact()
    {
        var data = new byte[(3 << 20) + 12_345];
        new Random(12).NextBytes(data);
        var source = WriteSnapshot("a", data);
        var target = SnapshotStore.Open(Path.Combine(_dir, "b"));

        await using var a = await Start("a");
        await using var b = await Start("b");
        SnapshotInfo? stored = null;
        Message? header = null;
        b.OnSnapshot = async (m, s, ct) =>
        {
            header = m;
            stored = await target.ReceiveAsync(m.Snapshot!, s, ct);
        };
        a.Transport.SetPeers(Peers(b));

        var message = new Message { Type = MessageType.InstallSnapshot, From = "a", To = "b", Term = 3, Snapshot = source.Metadata };
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Transport.SendSnapshot(message, source, done.SetResult);

        Assert.True(await done.Task.WaitAsync(Deadline(15)));
        AssertSame(message, header!);
        Assert.Equal(source.Metadata, stored!.Metadata);
        Assert.Equal(data.Length, stored.DataLength);
        await using var read = SnapshotStore.OpenRead(stored);
        var copy = new MemoryStream();
        await read.CopyToAsync(copy);
        Assert.True(copy.ToArray().AsSpan().SequenceEqual(data));
    }

    [Fact]
    public async Task A_snapshot_cut_off_mid_stream_fails_on_both_sides()
    {
        // The source file is damaged in the middle: the sender discovers it only at the end of the data (the checksum),
        // after most chunks went out, and must abort so the receiver never takes the bytes for a whole snapshot.
        var data = new byte[2 << 20];
        new Random(13).NextBytes(data);
        var source = WriteSnapshot("a", data);
        await using (var f = new FileStream(source.FilePath, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = f.Length / 2;
            var b = f.ReadByte();
            f.Position = f.Length / 2;
            f.WriteByte((byte)~b);
        }

        await using var a = await Start("a");
        await using var receiver = await Start("b");
        var outcome = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        receiver.OnSnapshot = (m, s, ct) => CopyAndRecord(s, outcome, ct);
        a.Transport.SetPeers(Peers(receiver));

        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Transport.SendSnapshot(new Message { Type = MessageType.InstallSnapshot, From = "a", To = "b", Snapshot = source.Metadata }, source, done.SetResult);

        Assert.False(await done.Task.WaitAsync(Deadline()));
        Assert.IsAssignableFrom<IOException>(await outcome.Task.WaitAsync(Deadline()));
    }

    public enum BrokenStream
    {
        ClosedInsideAChunk,
        ClosedWithoutEndFrame,
        WrongChecksum,
        ShorterThanAnnounced,
        LongerThanAnnounced,
    }

    [Theory]
    [InlineData(BrokenStream.ClosedInsideAChunk)]
    [InlineData(BrokenStream.ClosedWithoutEndFrame)]
    [InlineData(BrokenStream.WrongChecksum)]
    [InlineData(BrokenStream.ShorterThanAnnounced)]
    [InlineData(BrokenStream.LongerThanAnnounced)]
    public async Task A_broken_snapshot_stream_throws_in_the_handler_and_is_not_acknowledged(BrokenStream kind)
    {
        await using var b = await Start("b");
        var outcome = new TaskCompletionSource<Exception?>(TaskCreationOptions.RunContinuationsAsynchronously);
        b.OnSnapshot = (m, s, ct) => CopyAndRecord(s, outcome, ct);

        var data = new byte[10_000];
        new Random(14).NextBytes(data);
        using var s = await ConnectRaw(b.Transport);
        await s.SendAsync(Handshake.EncodeHello(ConnectionKind.Snapshot, "x", "127.0.0.1:1"));
        var reply = new byte[Handshake.ReplyLength];
        await ReceiveExactly(s, reply);
        Handshake.CheckReply(reply, "b");

        var announced = kind == BrokenStream.LongerThanAnnounced ? 5_000 : data.Length;
        var message = MessageCodec.Encode(new Message { Type = MessageType.InstallSnapshot, From = "x", To = "b", Snapshot = new SnapshotMetadata(9, 2, ClusterConfig.Empty) });
        await s.SendAsync(Frame([.. Int64(announced), .. message]));
        switch (kind)
        {
            case BrokenStream.ClosedInsideAChunk:
                var partial = Frame([SnapshotFrames.Data, .. data]);
                await s.SendAsync(partial.AsMemory(0, partial.Length / 2));
                break;
            case BrokenStream.ClosedWithoutEndFrame:
                await s.SendAsync(Frame([SnapshotFrames.Data, .. data]));
                break;
            case BrokenStream.WrongChecksum:
                await s.SendAsync(Frame([SnapshotFrames.Data, .. data]));
                await s.SendAsync(EndFrame(data.Length, Crc32C.Compute(data) ^ 1));
                break;
            case BrokenStream.ShorterThanAnnounced:
                await s.SendAsync(Frame([SnapshotFrames.Data, .. data.AsSpan(0, 4_000)]));
                await s.SendAsync(EndFrame(4_000, Crc32C.Compute(data.AsSpan(0, 4_000))));
                break;
            case BrokenStream.LongerThanAnnounced:
                // Refused at this chunk already. (No end frame: bytes the receiver never reads would turn its close into a
                // reset that could overtake the acknowledgement.)
                await s.SendAsync(Frame([SnapshotFrames.Data, .. data]));
                break;
        }
        // Half-close: the receiver sees the end of our data but can still answer.
        s.Shutdown(SocketShutdown.Send);

        Assert.IsAssignableFrom<IOException>(await outcome.Task.WaitAsync(Deadline()));
        var answer = await ReadToClose(s);
        Assert.Equal(new[] { SnapshotFrames.AckFailed }, answer);
    }

    [Fact]
    public async Task A_receiver_that_fails_to_store_the_snapshot_makes_done_report_false()
    {
        var data = new byte[1 << 20];
        new Random(15).NextBytes(data);
        var source = WriteSnapshot("a", data);
        await using var a = await Start("a");
        await using var b = await Start("b");
        a.Transport.SetPeers(Peers(b));
        var message = new Message { Type = MessageType.InstallSnapshot, From = "a", To = "b" }; // metadata filled in from the file

        b.OnSnapshot = async (m, s, ct) =>
        {
            Assert.Equal(source.Metadata, m.Snapshot);
            await s.ReadExactlyAsync(new byte[100], ct);
            throw new IOException("disk full");
        };
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Transport.SendSnapshot(message, source, done.SetResult);
        Assert.False(await done.Task.WaitAsync(Deadline()));

        // A handler that returns without reading the stream to its end has not stored it either.
        b.OnSnapshot = (m, s, ct) => Task.CompletedTask;
        done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Transport.SendSnapshot(message, source, done.SetResult);
        Assert.False(await done.Task.WaitAsync(Deadline()));

        // And the same connection pair still carries a good one.
        b.OnSnapshot = (m, s, ct) => s.CopyToAsync(Stream.Null, ct);
        done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Transport.SendSnapshot(message, source, done.SetResult);
        Assert.True(await done.Task.WaitAsync(Deadline()));
    }

    [Fact]
    public async Task A_snapshot_asked_for_again_while_it_streams_is_streamed_once()
    {
        // The core asks again every election timeout while a big snapshot streams; each ask used to open a new stream
        // of the whole file (7 at once were seen for one 600 MB install). The receiver here reads the first chunk, then
        // stalls until every ask has been made, like a transfer that takes many election timeouts.
        var data = new byte[1 << 20];
        new Random(21).NextBytes(data);
        var source = WriteSnapshot("a", data);
        await using var a = await Start("a");
        await using var b = await Start("b");
        a.Transport.SetPeers(Peers(b));
        var streams = 0;
        var reading = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var resume = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        b.OnSnapshot = async (m, s, ct) =>
        {
            Interlocked.Increment(ref streams);
            await s.ReadExactlyAsync(new byte[1000], ct);
            reading.TrySetResult();
            await resume.Task.WaitAsync(ct);
            await s.CopyToAsync(Stream.Null, ct);
        };
        var message = new Message { Type = MessageType.InstallSnapshot, From = "a", To = "b", Term = 2, Snapshot = source.Metadata };
        var outcomes = new List<Task<bool>>();
        void Ask()
        {
            var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            a.Transport.SendSnapshot(message, source, done.SetResult);
            outcomes.Add(done.Task);
        }

        Ask();
        await reading.Task.WaitAsync(Deadline());
        for (var i = 0; i < 6; i++) Ask();
        Assert.Equal(1, a.Transport.SnapshotTransfersStarted);
        resume.SetResult();
        // Every ask shares the one transfer's outcome, and only one stream reached the receiver.
        Assert.All(await Task.WhenAll(outcomes).WaitAsync(Deadline()), Assert.True);
        Assert.Equal(1, Volatile.Read(ref streams));
        Assert.Equal(1, a.Transport.SnapshotTransfersStarted);

        // A later ask, once it is over, is a new transfer.
        Ask();
        Assert.True(await outcomes[^1].WaitAsync(Deadline()));
        Assert.Equal(2, Volatile.Read(ref streams));
    }

    [Fact]
    public async Task A_failed_snapshot_transfer_is_retried_only_after_a_backoff()
    {
        var data = new byte[300_000];
        new Random(22).NextBytes(data);
        var source = WriteSnapshot("a", data);
        var options = new TransportOptions
        {
            ReconnectMinDelay = TimeSpan.FromMilliseconds(10),
            ShutdownTimeout = TimeSpan.FromSeconds(3),
            SnapshotChunkSize = 64 << 10,
            SnapshotRetryMinDelay = TimeSpan.FromSeconds(2),
            SnapshotRetryMaxDelay = TimeSpan.FromSeconds(8),
        };
        await using var a = await Start("a", options);
        await using var b = await Start("b");
        a.Transport.SetPeers(Peers(b));
        var streams = 0;
        b.OnSnapshot = async (m, s, ct) =>
        {
            if (Interlocked.Increment(ref streams) == 1) throw new IOException("disk full");
            await s.CopyToAsync(Stream.Null, ct);
        };
        var message = new Message { Type = MessageType.InstallSnapshot, From = "a", To = "b", Term = 2, Snapshot = source.Metadata };

        var first = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Transport.SendSnapshot(message, source, first.SetResult);
        Assert.False(await first.Task.WaitAsync(Deadline()));
        Assert.InRange(a.Transport.SnapshotRetryDelay("b"), TimeSpan.FromMilliseconds(1), options.SnapshotRetryMinDelay);

        // Asked again at once (the core probes after a failure): it waits out the backoff instead of starting now.
        var second = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Transport.SendSnapshot(message, source, second.SetResult);
        Assert.Equal(1, a.Transport.SnapshotTransfersStarted);
        Assert.False(second.Task.IsCompleted);
        Assert.True(await second.Task.WaitAsync(Deadline()));
        Assert.Equal(2, a.Transport.SnapshotTransfersStarted);
        Assert.Equal(2, Volatile.Read(ref streams));
        // A success resets the backoff.
        Assert.Equal(TimeSpan.Zero, a.Transport.SnapshotRetryDelay("b"));
    }

    [Fact]
    public async Task Garbage_and_HTTP_on_the_raft_port_are_refused_and_the_listener_survives()
    {
        await using var b = await Start("b", new TransportOptions { HandshakeTimeout = TimeSpan.FromMilliseconds(300), MaxFrameSize = 1 << 20, SnapshotChunkSize = 64 << 10, ShutdownTimeout = TimeSpan.FromSeconds(3) });
        await using var a = await Start("a");
        a.Transport.SetPeers(Peers(b));

        // Random bytes.
        using (var s = await ConnectRaw(b.Transport))
        {
            var junk = new byte[64];
            new Random(16).NextBytes(junk);
            junk[0] = 0;
            await s.SendAsync(junk);
            Assert.Empty(await ReadToClose(s));
        }

        // An HTTP client gets a 400 that says what this port is.
        using (var s = await ConnectRaw(b.Transport))
        {
            await s.SendAsync("GET /key/a HTTP/1.1\r\nHost: x\r\n\r\n"u8.ToArray());
            var answer = Encoding.ASCII.GetString(await ReadToClose(s));
            Assert.StartsWith("HTTP/1.1 400", answer);
            Assert.Contains("raft", answer);
        }

        // A client that says nothing is dropped at the handshake timeout.
        using (var s = await ConnectRaw(b.Transport))
        {
            Assert.Empty(await ReadToClose(s));
        }

        // A future protocol version is told why.
        using (var s = await ConnectRaw(b.Transport))
        {
            var hello = Handshake.EncodeHello(ConnectionKind.Messages, "x", "127.0.0.1:1");
            hello[4] = 99;
            await s.SendAsync(hello);
            var answer = await ReadToClose(s);
            Assert.Equal(Handshake.ReplyLength, answer.Length);
            var e = Assert.Throws<PeerRefusedException>(() => Handshake.CheckReply(answer, "b"));
            Assert.Contains("version", e.Message);
        }

        // A peer that handshakes, then sends an oversized frame or an undecodable one, is disconnected.
        foreach (var bad in new[] { Int32(int.MaxValue), Frame([200, 0, 0, 0]) })
        {
            using var s = await ConnectRaw(b.Transport);
            await s.SendAsync(Handshake.EncodeHello(ConnectionKind.Messages, "x", "127.0.0.1:1"));
            await s.SendAsync(bad);
            var answer = await ReadToClose(s);
            Assert.Equal(Handshake.ReplyLength, answer.Length); // the accepted reply, then the close
        }

        // Through all of it the listener kept serving.
        var m = new Message { Type = MessageType.Vote, From = "a", To = "b", Term = 9 };
        Assert.True(a.Transport.Send(m));
        AssertSame(m, await b.Receive());
    }

    [Fact]
    public async Task Dispose_is_prompt_with_busy_connections()
    {
        using var hole = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        hole.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        hole.Listen(1);
        var a = await Start("a", new TransportOptions { ConnectTimeout = TimeSpan.FromSeconds(60), ShutdownTimeout = TimeSpan.FromSeconds(3) });
        // b's snapshot handler ignores its cancellation token: dispose must still end, after ShutdownTimeout at most.
        var b = await Start("b", new TransportOptions { ShutdownTimeout = TimeSpan.FromMilliseconds(500) });
        var handlerEntered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        b.OnSnapshot = async (m, s, ct) =>
        {
            handlerEntered.TrySetResult();
            await release.Task;
        };
        a.Transport.SetPeers(new Dictionary<string, string> { ["b"] = b.Address, ["hole"] = $"127.0.0.1:{((IPEndPoint)hole.LocalEndPoint!).Port}" });
        b.Transport.SetPeers(Peers(a));

        // Live connections both ways, a writer stuck on a hanging peer, and a snapshot in flight.
        Assert.True(a.Transport.Send(new Message { From = "a", To = "b" }));
        Assert.True(b.Transport.Send(new Message { From = "b", To = "a" }));
        Assert.True(a.Transport.Send(new Message { From = "a", To = "hole" }));
        await b.Receive();
        await a.Receive();
        var source = WriteSnapshot("a", new byte[100_000]);
        var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        a.Transport.SendSnapshot(new Message { Type = MessageType.InstallSnapshot, From = "a", To = "b" }, source, done.SetResult);
        await handlerEntered.Task.WaitAsync(Deadline());

        var watch = Stopwatch.StartNew();
        await b.DisposeAsync().AsTask().WaitAsync(Deadline(5));
        await a.DisposeAsync().AsTask().WaitAsync(Deadline(5));
        output.WriteLine($"both disposed in {watch.Elapsed}");
        Assert.False(await done.Task.WaitAsync(Deadline()));
        release.SetResult();
    }

    [Fact]
    public async Task Failures_leave_no_unobserved_task_exceptions()
    {
        var unobserved = new List<string>();
        void OnUnobserved(object? sender, UnobservedTaskExceptionEventArgs e)
        {
            // Other test classes run in parallel; only count what came from the transport.
            var text = e.Exception.ToString();
            if (text.Contains("RaftKv.Node.Transport", StringComparison.Ordinal)) lock (unobserved) unobserved.Add(text);
        }
        TaskScheduler.UnobservedTaskException += OnUnobserved;
        try
        {
            await RunFailures();
            for (var i = 0; i < 3; i++)
            {
                GC.Collect();
                GC.WaitForPendingFinalizers();
            }
        }
        finally
        {
            TaskScheduler.UnobservedTaskException -= OnUnobserved;
        }
        Assert.Empty(unobserved);

        async Task RunFailures()
        {
            var a = await Start("a");
            var b = await Start("b");
            a.Transport.SetPeers(new Dictionary<string, string> { ["b"] = b.Address, ["dead"] = $"127.0.0.1:{FreePorts.Pick()}" });
            b.OnSnapshot = (m, s, ct) => throw new InvalidOperationException("handler bug");
            a.Transport.Send(new Message { From = "a", To = "b" });
            a.Transport.Send(new Message { From = "a", To = "dead" });
            await b.Receive();
            await WaitUntil(() => a.Transport.FindPeer("dead")!.Dropped > 0, "the dead peer's message to be dropped");
            var done = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
            a.Transport.SendSnapshot(new Message { Type = MessageType.InstallSnapshot, From = "a", To = "b" }, WriteSnapshot("a", new byte[1000]), done.SetResult);
            Assert.False(await done.Task.WaitAsync(Deadline()));
            using (var s = await ConnectRaw(b.Transport))
            {
                await s.SendAsync(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 });
                await ReadToClose(s);
            }
            await b.DisposeAsync(); // a's connection to b breaks under it
            await WaitUntil(() => !a.Transport.FindPeer("b")!.IsConnected, "a to notice b is gone");
            await a.DisposeAsync();
        }
    }

    private SnapshotInfo WriteSnapshot(string node, byte[] data)
    {
        var store = SnapshotStore.Open(Path.Combine(_dir, node));
        var config = new ClusterConfig([new Member("a", "127.0.0.1:1", true), new Member("b", "127.0.0.1:2", true)]);
        using var writer = store.Create(new SnapshotMetadata(100, 3, config));
        writer.Stream.Write(data);
        return writer.Commit();
    }

    private static async Task CopyAndRecord(Stream s, TaskCompletionSource<Exception?> outcome, CancellationToken ct)
    {
        try
        {
            await s.CopyToAsync(Stream.Null, ct);
            outcome.TrySetResult(null);
        }
        catch (Exception e)
        {
            outcome.TrySetResult(e);
            throw;
        }
    }

    private static async Task ReceiveExactly(Socket s, byte[] buffer)
    {
        var got = 0;
        var ct = Deadline();
        while (got < buffer.Length)
        {
            var n = await s.ReceiveAsync(buffer.AsMemory(got), SocketFlags.None, ct);
            if (n == 0) throw new EndOfStreamException();
            got += n;
        }
    }

    private static byte[] Frame(byte[] payload) => [.. Int32(payload.Length), .. payload];

    private static byte[] EndFrame(long length, uint crc) => Frame([SnapshotFrames.End, .. Int64(length), .. UInt32(crc)]);

    private static byte[] Int32(int value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteInt32LittleEndian(b, value);
        return b;
    }

    private static byte[] UInt32(uint value)
    {
        var b = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(b, value);
        return b;
    }

    private static byte[] Int64(long value)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(b, value);
        return b;
    }
}
