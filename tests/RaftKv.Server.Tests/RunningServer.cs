using System.Net.Sockets;
using Microsoft.Extensions.Logging.Abstractions;

namespace RaftKv.Server.Tests;

/// <summary>The real app around a node, on a free loopback port, with a client that does not follow redirects.</summary>
internal sealed class RunningServer : IAsyncDisposable
{
    private readonly WebApplication _app;

    private RunningServer(WebApplication app, FakeKvNode node, string address)
    {
        _app = app;
        Node = node;
        Address = address;
        Client = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, UseProxy = false })
        {
            BaseAddress = new Uri("http://" + address),
            Timeout = TimeSpan.FromSeconds(20),
        };
    }

    public FakeKvNode Node { get; }
    public string Address { get; }
    public HttpClient Client { get; }

    public static async Task<RunningServer> StartAsync(FakeKvNode? node = null, ServerOptions? options = null, ILoggerFactory? logging = null)
    {
        node ??= new FakeKvNode();
        options = (options ?? new ServerOptions()) with { HttpAddress = "127.0.0.1:0" };
        // The node enforces the request timeout (raftkvd gives the node and the server the same one).
        node.RequestTimeout = options.RequestTimeout;
        var app = ServerApp.Build(node, options, logging ?? NullLoggerFactory.Instance);
        await app.StartAsync();
        var address = ServerApp.BoundAddresses(app).Single();
        node.HttpAddress = address;
        return new RunningServer(app, node, address);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    /// <summary>Waits for a condition, polling, failing at the deadline: no bare sleeps.</summary>
    public static Task WaitUntilAsync(Func<bool> condition, string what, int timeoutMs = 10_000) =>
        WaitUntilAsync(() => Task.FromResult(condition()), what, timeoutMs);

    /// <summary>Waits for an asynchronous condition, polling, failing at the deadline.</summary>
    public static async Task WaitUntilAsync(Func<Task<bool>> condition, string what, int timeoutMs = 10_000)
    {
        using var deadline = new CancellationTokenSource(timeoutMs);
        while (!await condition())
        {
            try
            {
                await Task.Delay(10, deadline.Token);
            }
            catch (OperationCanceledException)
            {
                Assert.Fail($"timed out waiting for {what}");
            }
        }
    }
}
