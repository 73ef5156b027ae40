using System.Net;
using Microsoft.Extensions.Logging.Abstractions;
using RaftKv.Node;
using RaftKv.Node.Transport;

namespace RaftKv.Server.Tests;

/// <summary>
/// A write the cluster could not replicate is 413 with a JSON error, and writing goes on: the HTTP app around a real
/// node whose raft frame (64 KiB) is smaller than the body limit (1 MiB), as an embedder could configure them.
/// </summary>
public sealed class EntrySizeTests
{
    private const int FrameSize = 64 * 1024;

    [Fact]
    public async Task A_body_within_the_limit_but_too_large_to_replicate_is_413_and_writes_go_on()
    {
        var root = Path.Combine(Path.GetTempPath(), "raftkv-entry-size", Guid.NewGuid().ToString("N"));
        var node = await KvNode.StartAsync(new NodeOptions
        {
            Id = "n0",
            DataDirectory = root,
            RaftBindAddress = $"127.0.0.1:{FreePorts.Pick()}",
            HttpAdvertiseAddress = "",
            Bootstrap = true,
            ForwardToLeader = false,
            Transport = new TransportOptions { MaxFrameSize = FrameSize, SnapshotChunkSize = 16 * 1024 },
        });
        var app = ServerApp.Build(node, new ServerOptions { HttpAddress = "127.0.0.1:0" }, NullLoggerFactory.Instance);
        try
        {
            await app.StartAsync();
            using var http = new HttpClient { BaseAddress = new Uri("http://" + ServerApp.BoundAddresses(app).Single()) };
            await RunningServer.WaitUntilAsync(async () => (await node.GetStatusAsync()).Ready, "the node leads", 30_000);

            var error = await (await http.SendAsync(HttpMethod.Post, "/key", $"{{\"big\":\"{new string('x', FrameSize)}\"}}"))
                .AssertErrorAsync(HttpStatusCode.RequestEntityTooLarge);
            Assert.Contains("largest entry", error);
            // raftd's dialect: the body is the value.
            using var raw = new StringContent(new string('x', FrameSize));
            Assert.Equal(HttpStatusCode.RequestEntityTooLarge, (await http.PostAsync("/db/big", raw)).StatusCode);

            var largest = new string('y', (int)EntryLimits.MaxValueBytes(FrameSize, 3));
            Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(HttpMethod.Post, "/key", $"{{\"big\":\"{largest}\"}}")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await http.SendAsync(HttpMethod.Post, "/key", """{"small":"1"}""")).StatusCode);
            Assert.Equal(largest, await node.GetAsync("big", ReadLevel.Linearizable));
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
            await node.DisposeAsync();
            try
            {
                Directory.Delete(root, recursive: true);
            }
            catch (IOException)
            {
            }
        }
    }
}
