using System.Net;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.Logging.Abstractions;
using RaftKv.Node;
using RaftKv.Server.CommandLine;
using RaftKv.Server.Http;

namespace RaftKv.Server;

/// <summary>
/// Builds the HTTP app around any <see cref="IKvNode"/>: the real <c>KvNode</c> in <c>raftkvd</c>, a fake in tests.
/// Every endpoint is served at its path and again under <c>/hraftd</c> (the bingoohuang fork's prefix).
/// </summary>
public static class ServerApp
{
    /// <summary>The path prefix the fork uses; every endpoint is also served under it.</summary>
    public const string PathPrefix = "/hraftd";

    /// <summary>Room in the request line besides the key: method, path, query, protocol.</summary>
    private const int RequestLineSlackBytes = 4096;

    /// <summary>How far past --max-body Kestrel will read to drain a refused body (see <see cref="Build"/>).</summary>
    private const long DrainSlackBytes = 1L << 20;

    /// <summary>
    /// The .NET switch that runs socket completions on the socket engine's thread; raftkvd sets it to 1 (Program.cs),
    /// and then requests run on that thread too.
    /// </summary>
    public const string InlineCompletionsVariable = "DOTNET_SYSTEM_NET_SOCKETS_INLINE_COMPLETIONS";

    /// <summary>Response header carrying the log index a write was applied at.</summary>
    public const string IndexHeader = "X-RaftKv-Index";

    /// <summary>
    /// Builds (but does not start) the app. The caller owns <paramref name="node"/>: stop and dispose the app first, then
    /// the node, so in-flight requests finish before the node goes away.
    /// </summary>
    public static WebApplication Build(IKvNode node, ServerOptions options, ILoggerFactory? loggerFactory = null)
    {
        ArgumentNullException.ThrowIfNull(node);
        ArgumentNullException.ThrowIfNull(options);

        // The empty builder: no appsettings files, no file watchers, no default logging providers. raftkvd is configured by
        // its flags alone, and tests can start many apps in one process cheaply.
        var builder = WebApplication.CreateEmptyBuilder(new WebApplicationOptions { ApplicationName = "raftkvd" });
        builder.Services.AddSingleton(loggerFactory ?? NullLoggerFactory.Instance);
        builder.Services.AddSingleton(typeof(ILogger<>), typeof(Logger<>));
        builder.Services.AddRoutingCore();
        // Where socket completions run inline (raftkvd, see Program.cs), Kestrel may run the request on that same thread
        // too rather than queue it to the pool: one thread switch less per request.
        if (Environment.GetEnvironmentVariable(InlineCompletionsVariable) == "1")
        {
            builder.Services.Configure<SocketTransportOptions>(sockets => sockets.UnsafePreferInlineScheduling = true);
        }
        builder.WebHost.UseKestrelCore().ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            // RequestBody enforces --max-body itself (413 as soon as the excess shows). Kestrel's own cap sits a little
            // higher so that, after a 413, Kestrel can drain the unread rest of a moderately oversized body and the client
            // reliably reads the 413; with the caps equal Kestrel resets the connection and clients often see only the reset.
            // Anything beyond the slack is cut off at the socket, as before.
            kestrel.Limits.MaxRequestBodySize = options.MaxBodyBytes + DrainSlackBytes;
            // A key that can be written must be readable and deletable, and those put it in the URL, percent-encoded
            // (up to 3 bytes per byte): Kestrel's 8 KiB request line would answer 414 for keys a POST accepted.
            kestrel.Limits.MaxRequestLineSize = (int)Math.Max(kestrel.Limits.MaxRequestLineSize, options.MaxKeyBytes * 3L + RequestLineSlackBytes);
            Listen(kestrel, options.HttpAddress);
        });

        var app = builder.Build();
        var factory = app.Services.GetRequiredService<ILoggerFactory>();
        var server = new ServerContext(node, options, factory);
        app.Lifetime.ApplicationStopped.Register(server.Dispose);

        var errorLogger = factory.CreateLogger("RaftKv.Server.Errors");
        app.Use(next => context => ErrorHandling.InvokeAsync(context, next, errorLogger));
        // Moves a leading /hraftd into PathBase, so one set of routes serves both spellings.
        app.UsePathBase(PathPrefix);
        app.UseRouting();

        HraftdEndpoints.Map(app, server);
        RaftdEndpoints.Map(app, server);
        OperatorEndpoints.Map(app, server);
        ForwardedCallEndpoint.Map(app, server);
        HealthEndpoints.Map(app, server);
        return app;
    }

    /// <summary>The addresses the started app listens on, as host:port (the real port when 0 was asked for).</summary>
    public static IReadOnlyList<string> BoundAddresses(WebApplication app)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        return addresses.Select(a => new Uri(a)).Select(u => u.Authority).ToList();
    }

    /// <summary>
    /// Binds the way Go's net.Listen reads host:port: "localhost" is loopback, an empty host or 0.0.0.0 is every
    /// interface, an IP is that IP, another name is every address it resolves to.
    /// </summary>
    private static void Listen(KestrelServerOptions kestrel, string address)
    {
        if (!NetworkAddress.TryParse(address, out var host, out var port))
        {
            throw new ArgumentException($"not a host:port address: {address}", nameof(address));
        }
        if (host is "" or "0.0.0.0" or "*" or "+")
        {
            kestrel.ListenAnyIP(port);
        }
        else if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase))
        {
            // Kestrel refuses port 0 on "localhost" (two sockets could get different ports): pick IPv4 loopback then.
            if (port == 0)
            {
                kestrel.Listen(IPAddress.Loopback, 0);
            }
            else
            {
                kestrel.ListenLocalhost(port);
            }
        }
        else if (IPAddress.TryParse(host, out var ip))
        {
            kestrel.Listen(ip, port);
        }
        else
        {
            foreach (var resolved in Dns.GetHostAddresses(host))
            {
                kestrel.Listen(resolved, port);
            }
        }
    }
}
