using System.CommandLine;
using System.Runtime.InteropServices;
using RaftKv.Node;
using RaftKv.Server.CommandLine;

namespace RaftKv.Server.Hosting;

/// <summary>
/// <c>raftkvd</c> from arguments to exit code: parse and check flags (exit 2 on a usage error, before anything is
/// started), check that its ports are free (exit 1, still before anything is written), start the node, serve HTTP,
/// join a cluster if asked and new, and stop gracefully on SIGTERM/Ctrl-C.
/// </summary>
public static class Daemon
{
    /// <summary>Exit code for usage errors (bad flags, unusable data directory).</summary>
    public const int UsageError = 2;

    /// <summary>Exit code when the node or the HTTP listener cannot start.</summary>
    public const int StartFailure = 1;

    /// <summary>Exit code when the running node stopped by itself (its raft loop failed): a supervisor should restart it.</summary>
    public const int NodeFailed = 3;

    /// <summary>Runs until <paramref name="cancellationToken"/> fires or the process is told to stop.</summary>
    /// <param name="args">Command-line arguments.</param>
    /// <param name="nodeFactory">Starts the node (<see cref="KvNodeFactory.StartAsync"/> in production).</param>
    /// <param name="stdout">Help and the startup line.</param>
    /// <param name="stderr">Usage errors and warnings meant for the operator.</param>
    /// <param name="cancellationToken">Stops the daemon (as a signal would).</param>
    /// <param name="loggerFactory">Log destination; by default single-line console logs on stderr at the level the flags chose.</param>
    public static async Task<int> RunAsync(
        string[] args, NodeFactory nodeFactory, TextWriter stdout, TextWriter stderr,
        CancellationToken cancellationToken = default, ILoggerFactory? loggerFactory = null)
    {
        var outcome = new DaemonCommandLine().Parse(args);
        if (outcome.InformationRequest is { } information)
        {
            return information.Invoke(new InvocationConfiguration { Output = stdout, Error = stderr });
        }
        if (outcome.Error is { } error)
        {
            await stderr.WriteLineAsync($"raftkvd: {error} (see raftkvd --help)");
            return UsageError;
        }
        var options = outcome.Options!;
        // Before the data directory check, which creates the directory: a taken port leaves no trace.
        foreach (var (what, address, problem) in new[]
                 {
                     ("HTTP", options.HttpAddress, PortProbe.HttpInUse(options.HttpAddress)),
                     ("raft", options.RaftAddress, PortProbe.RaftInUse(options.RaftAddress)),
                 })
        {
            if (problem is not null)
            {
                await stderr.WriteLineAsync($"raftkvd: cannot listen for {what} on {address}: {problem}; nothing was started or written");
                return StartFailure;
            }
        }
        if (DataDirectory.Validate(options.DataDirectory, options.InMemory) is { } directoryError)
        {
            await stderr.WriteLineAsync("raftkvd: " + directoryError);
            return UsageError;
        }

        var ownsLoggerFactory = loggerFactory is null;
        loggerFactory ??= CreateConsoleLogging(options.LogLevel);
        try
        {
            return await ServeAsync(options, nodeFactory, stdout, stderr, loggerFactory, cancellationToken);
        }
        finally
        {
            if (ownsLoggerFactory)
            {
                loggerFactory.Dispose();
            }
        }
    }

    private static async Task<int> ServeAsync(
        DaemonOptions options, NodeFactory nodeFactory, TextWriter stdout, TextWriter stderr,
        ILoggerFactory loggerFactory, CancellationToken cancellationToken)
    {
        var logger = loggerFactory.CreateLogger("raftkvd");
        using var shutdown = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Stop);
        using var sigint = PosixSignalRegistration.Create(PosixSignal.SIGINT, Stop);

        // hraftd's rule: a node with nowhere to join, or told to join only itself (the fork starts every node with the
        // same --rjoin), founds the cluster, but only if it has no state yet. The node also refuses to bootstrap over state.
        var joinTargets = options.JoinTargetsExcludingSelf();
        var fresh = options.InMemory || DataDirectory.IsNew(options.DataDirectory);
        var bootstrap = joinTargets.Count == 0 && fresh;

        await stdout.WriteLineAsync(
            $"raftkvd {options.Id}: HTTP on {options.HttpAddress} (advertised {options.HttpAdvertiseAddress}), " +
            $"raft on {options.RaftAddress} (advertised {options.RaftAdvertiseAddress}), " +
            $"data in {(options.InMemory ? "memory" : options.DataDirectory)}; " +
            (bootstrap ? "bootstrapping a new cluster"
                : joinTargets.Count > 0 && fresh ? "joining via " + string.Join(",", joinTargets)
                : "restarting from existing state"));
        await stdout.FlushAsync(CancellationToken.None);
        if (options.InMemory)
        {
            await stderr.WriteLineAsync("raftkvd: -inmem: the raft log is kept in memory only; writes are NOT durable and are lost when this node stops");
        }

        IKvNode node;
        try
        {
            node = await nodeFactory(options.ToNodeOptions(bootstrap), loggerFactory, shutdown.Token);
        }
        catch (OperationCanceledException) when (shutdown.IsCancellationRequested)
        {
            return 0;
        }
        catch (Exception e)
        {
            await stderr.WriteLineAsync("raftkvd: cannot start the node: " + e.Message);
            return StartFailure;
        }

        // Declared before the app, so disposed after it: in-flight requests finish before the node goes.
        await using var ownedNode = node;
        WebApplication app;
        try
        {
            app = ServerApp.Build(node, options.ToServerOptions(), loggerFactory);
            await app.StartAsync(shutdown.Token);
        }
        catch (OperationCanceledException) when (shutdown.IsCancellationRequested)
        {
            return 0;
        }
        catch (Exception e)
        {
            await stderr.WriteLineAsync($"raftkvd: cannot serve HTTP on {options.HttpAddress}: {e.Message}");
            return StartFailure;
        }

        await using (app)
        {
            // Anything else that stops the host (its own lifetime handling) stops the daemon too.
            using var stopping = app.Lifetime.ApplicationStopping.Register(shutdown.Cancel);
            using var joinClient = new HttpClient(new SocketsHttpHandler { UseProxy = false, ConnectTimeout = TimeSpan.FromSeconds(2) });
            var joining = Task.CompletedTask;
            if (joinTargets.Count > 0)
            {
                var status = await node.GetStatusAsync(shutdown.Token);
                if (status.LastLogIndex == 0)
                {
                    var joiner = new ClusterJoiner(joinClient, logger);
                    joining = Task.Run(async () =>
                    {
                        try
                        {
                            await joiner.JoinAsync(joinTargets, options.Id, options.RaftAdvertiseAddress, options.HttpAdvertiseAddress, shutdown.Token,
                                status.Incarnation, status.ClusterId);
                        }
                        catch (JoinRefusedException)
                        {
                            // Logged by the joiner.
                        }
                        catch (Exception e) when (e is not OperationCanceledException)
                        {
                            // The joiner retries what it expects; anything else is said at once (not at shutdown, as a crash).
                            logger.LogError(e, "Joining the cluster failed; this node is not a member. Fix -join and restart it");
                        }
                    });
                }
                else
                {
                    logger.LogInformation("Node has state (last log index {Index}); not joining again", status.LastLogIndex);
                }
            }

            // A node whose raft loop failed serves nothing more: end the process (non-zero) rather than linger, so
            // that a supervisor restarts it. /livez answers 503 from the failure until the process is gone.
            var stopped = Task.Delay(Timeout.Infinite, shutdown.Token);
            var failed = node.Failed;
            string? failure = await Task.WhenAny(stopped, failed) == failed ? await failed : null;
            if (failure is not null)
            {
                await stderr.WriteLineAsync($"raftkvd: the node stopped: {failure}; exiting with status {NodeFailed} so that a supervisor restarts it");
                await stderr.FlushAsync(CancellationToken.None);
                await shutdown.CancelAsync();
            }
            else
            {
                logger.LogInformation("Shutting down");
            }
            try
            {
                await joining;
            }
            catch (OperationCanceledException)
            {
            }
            // Let in-flight requests finish (bounded), then the node goes when ownedNode leaves scope. A failed node has
            // already failed every request it held.
            using var drain = new CancellationTokenSource(failure is null ? options.RequestTimeout + TimeSpan.FromSeconds(1) : TimeSpan.FromSeconds(1));
            await app.StopAsync(drain.Token);
            if (failure is not null) return NodeFailed;
        }
        return 0;

        void Stop(PosixSignalContext context)
        {
            // Handled here: stop gracefully instead of the runtime's immediate exit.
            context.Cancel = true;
            shutdown.Cancel();
        }
    }

    /// <summary>Single-line console logs on stderr (stdout is left for the startup line), at the flags' level.</summary>
    private static ILoggerFactory CreateConsoleLogging(LogLevel level) => LoggerFactory.Create(logging =>
    {
        logging.SetMinimumLevel(level);
        // ASP.NET Core's own chatter stays at Warning unless -trace asks for everything.
        logging.AddFilter("Microsoft", level == LogLevel.Trace ? LogLevel.Trace : LogLevel.Warning);
        // A failed start (say, the port is taken) is reported by the daemon in one line; the host would add the
        // whole exception and its stack trace.
        if (level > LogLevel.Debug) logging.AddFilter("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None);
        logging.AddSimpleConsole(console =>
        {
            console.SingleLine = true;
            console.UseUtcTimestamp = true;
            console.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
        });
        logging.AddConsole(console => console.LogToStandardErrorThreshold = LogLevel.Trace);
    });
}
