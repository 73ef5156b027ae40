using System.Net;
using System.Net.Sockets;
using System.Threading.Channels;
using Microsoft.Extensions.Logging;
using RaftKv.Node.Transport;
using RaftKv.Raft;
using Xunit.Abstractions;

namespace RaftKv.Node.Tests.Transport;

/// <summary>Random messages, deep comparison, and deadlines for the transport tests.</summary>
internal static class TransportTestKit
{
    public static readonly MessageType[] AllTypes = Enum.GetValues<MessageType>();

    /// <summary>A message with every field set from <paramref name="rng"/>; sizes and values vary to cover every varint width.</summary>
    public static Message RandomMessage(Random rng, MessageType type, string from = "node-a", string to = "node-b", int maxEntries = 6, int maxData = 200)
    {
        var entries = new Entry[rng.Next(maxEntries + 1)];
        var firstIndex = RandomUlong(rng);
        for (var i = 0; i < entries.Length; i++)
        {
            var data = new byte[rng.Next(3) == 0 ? 0 : rng.Next(maxData + 1)];
            rng.NextBytes(data);
            entries[i] = new Entry(unchecked(firstIndex + (ulong)i), RandomUlong(rng), rng.Next(2) == 0 ? EntryType.Normal : EntryType.Configuration, data);
        }
        SnapshotMetadata? snapshot = null;
        if (type == MessageType.InstallSnapshot || rng.Next(4) == 0)
        {
            var members = Enumerable.Range(0, rng.Next(4)).Select(i => new Member($"n{i}-é", $"10.0.0.{i}:700{i}|http://h{i}:80", rng.Next(2) == 0, RandomUlong(rng)));
            snapshot = new SnapshotMetadata(RandomUlong(rng), RandomUlong(rng), new ClusterConfig(members, rng.Next(2) == 0 ? "" : "cluster-é" + rng.Next()));
        }
        return new Message
        {
            Type = type,
            From = from,
            To = to,
            Term = RandomUlong(rng),
            LogTerm = RandomUlong(rng),
            Index = RandomUlong(rng),
            Commit = RandomUlong(rng),
            Reject = rng.Next(2) == 0,
            RejectHint = RandomUlong(rng),
            Context = RandomUlong(rng),
            Transfer = rng.Next(2) == 0,
            Snapshot = snapshot,
            Entries = entries,
        };
    }

    /// <summary>
    /// <paramref name="m"/> made into a message a correct peer could send (so the receiving transport's
    /// <see cref="MessageValidator"/> lets it through): entries only on Append, numbered from Index + 1, of the
    /// previous entry's term, configurations that decode.
    /// </summary>
    public static Message WellFormed(Message m)
    {
        var entries = Array.Empty<Entry>();
        var index = Math.Min(m.Index, ulong.MaxValue - 64);
        var logTerm = index == 0 ? 0 : Math.Min(m.LogTerm, m.Term);
        if (m.Type == MessageType.Append)
        {
            var config = new ClusterConfig([new Member("n1", "10.0.0.1:7001", true)]).Encode();
            entries = m.Entries.ToArray().Select((e, i) =>
                new Entry(index + 1 + (ulong)i, logTerm, e.Type, e.Type == EntryType.Configuration ? config : e.Data)).ToArray();
        }
        var wellFormed = new Message
        {
            Type = m.Type, From = m.From, To = m.To, Term = m.Term, LogTerm = logTerm, Index = index, Commit = m.Commit,
            Reject = m.Reject, RejectHint = m.RejectHint, Context = m.Context, Transfer = m.Transfer, Snapshot = m.Snapshot, Entries = entries,
        };
        Assert.Null(MessageValidator.FindProblem(wellFormed));
        return wellFormed;
    }

    /// <summary>Values of every magnitude, 0 and ulong.MaxValue included, so each varint length is exercised.</summary>
    public static ulong RandomUlong(Random rng) => rng.Next(8) switch
    {
        0 => 0,
        1 => ulong.MaxValue,
        _ => (ulong)rng.NextInt64() >> rng.Next(64),
    };

    public static void AssertSame(Message expected, Message actual)
    {
        Assert.Equal(expected.Type, actual.Type);
        Assert.Equal(expected.From, actual.From);
        Assert.Equal(expected.To, actual.To);
        Assert.Equal(expected.Term, actual.Term);
        Assert.Equal(expected.LogTerm, actual.LogTerm);
        Assert.Equal(expected.Index, actual.Index);
        Assert.Equal(expected.Commit, actual.Commit);
        Assert.Equal(expected.Reject, actual.Reject);
        Assert.Equal(expected.RejectHint, actual.RejectHint);
        Assert.Equal(expected.Context, actual.Context);
        Assert.Equal(expected.Transfer, actual.Transfer);
        Assert.Equal(expected.Snapshot, actual.Snapshot);
        Assert.Equal(expected.Entries.Length, actual.Entries.Length);
        for (var i = 0; i < expected.Entries.Length; i++)
        {
            var e = expected.Entries.Span[i];
            var a = actual.Entries.Span[i];
            Assert.Equal((e.Index, e.Term, e.Type), (a.Index, a.Term, a.Type));
            Assert.True(e.Data.Span.SequenceEqual(a.Data.Span), $"entry {i} data differs");
        }
    }

    /// <summary>Options for loopback tests: quick reconnects and shutdown, everything else default.</summary>
    public static TransportOptions FastOptions(int queueCapacity = 1024) => new()
    {
        SendQueueCapacity = queueCapacity,
        ReconnectMinDelay = TimeSpan.FromMilliseconds(10),
        ReconnectMaxDelay = TimeSpan.FromMilliseconds(200),
        ShutdownTimeout = TimeSpan.FromSeconds(3),
        SnapshotChunkSize = 256 << 10,
        SnapshotRetryMinDelay = TimeSpan.FromMilliseconds(100),
        SnapshotRetryMaxDelay = TimeSpan.FromSeconds(1),
    };

    /// <summary>A token that fires at the test's deadline: every wait in these tests is bounded by one.</summary>
    public static CancellationToken Deadline(int seconds = 10) => new CancellationTokenSource(TimeSpan.FromSeconds(seconds)).Token;

    /// <summary>Polls a condition until it holds or the deadline passes (for state with no event to wait on).</summary>
    public static async Task WaitUntil(Func<bool> condition, string what, int seconds = 10)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(seconds);
        while (!condition())
        {
            if (DateTime.UtcNow > deadline) Assert.Fail($"timed out waiting for {what}");
            await Task.Delay(5);
        }
    }


    /// <summary>Connects a raw client to a transport's port.</summary>
    public static async Task<Socket> ConnectRaw(TcpTransport target)
    {
        var s = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await s.ConnectAsync(new IPEndPoint(IPAddress.Loopback, target.LocalEndPoint.Port), Deadline());
        return s;
    }

    /// <summary>Reads until the server closes the connection (0 or a reset); returns what arrived. Fails at the deadline.</summary>
    public static async Task<byte[]> ReadToClose(Socket s, int seconds = 10)
    {
        var ms = new MemoryStream();
        var buffer = new byte[4096];
        var ct = Deadline(seconds);
        while (true)
        {
            int n;
            try
            {
                n = await s.ReceiveAsync(buffer, SocketFlags.None, ct);
            }
            catch (SocketException)
            {
                return ms.ToArray();
            }
            if (n == 0) return ms.ToArray();
            ms.Write(buffer, 0, n);
        }
    }
}

/// <summary>A started transport whose inbound messages land in a channel.</summary>
internal sealed class TestNode : IAsyncDisposable
{
    private readonly Channel<Message> _inbox = Channel.CreateUnbounded<Message>();

    private TestNode(TcpTransport transport) => Transport = transport;

    public TcpTransport Transport { get; }

    public string Id => Transport.LocalId;

    public string Address => Transport.LocalAddress;

    /// <summary>What the node's snapshot handler does; by default it reads the stream to its end and keeps the bytes.</summary>
    public Func<Message, Stream, CancellationToken, Task>? OnSnapshot { get; set; }

    public static async Task<TestNode> Start(string id, ILogger logger, TransportOptions? options = null, string listen = "127.0.0.1:0", string? advertise = null)
    {
        var transport = new TcpTransport(id, listen, logger, options ?? TransportTestKit.FastOptions(), advertise);
        var node = new TestNode(transport);
        await transport.StartAsync(
            m => node._inbox.Writer.TryWrite(m),
            (m, s, ct) => node.OnSnapshot is { } h ? h(m, s, ct) : s.CopyToAsync(Stream.Null, ct),
            CancellationToken.None);
        return node;
    }

    /// <summary>The next inbound message; fails the test at the deadline.</summary>
    public async Task<Message> Receive(int seconds = 10)
    {
        try
        {
            return await _inbox.Reader.ReadAsync(TransportTestKit.Deadline(seconds));
        }
        catch (OperationCanceledException)
        {
            Assert.Fail($"{Id}: no message within {seconds} s");
            throw;
        }
    }

    /// <summary>Waits up to <paramref name="milliseconds"/> for a message; null if none came.</summary>
    public async Task<Message?> TryReceive(int milliseconds)
    {
        using var cts = new CancellationTokenSource(milliseconds);
        try
        {
            return await _inbox.Reader.ReadAsync(cts.Token);
        }
        catch (OperationCanceledException)
        {
            return null;
        }
    }

    public ValueTask DisposeAsync() => Transport.DisposeAsync();
}

/// <summary>Routes transport logs to the test output, so a failing test shows what the transport saw.</summary>
internal sealed class TestLogger(ITestOutputHelper output, string name = "") : ILogger
{
    public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Debug;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        try
        {
            output.WriteLine($"{DateTime.UtcNow:HH:mm:ss.fff} {logLevel,-11} {name}{formatter(state, exception)}{(exception is null ? "" : " " + exception)}");
        }
        catch (InvalidOperationException)
        {
            // The test has finished; a late log line from a background task has nowhere to go.
        }
    }
}
