using RaftKv.Server;
using RaftKv.Server.Hosting;

// Socket completions run on the socket engine's thread instead of being queued to the thread pool (and Kestrel then
// runs each request there too, see ServerApp). On a small or virtualized machine a thread wake-up costs more than the
// work it hands over, and every request and raft message would pay one (figures: docs/measurements.md). Safe here because nothing raftkvd runs after a socket operation
// blocks (no sync-over-async; file syncs after a socket read are moved to the pool, see SnapshotStore.ReceiveAsync).
// .NET reads the variable once, when the first socket is created, so it is set before anything else runs; the value 0
// in the environment turns it off.
if (Environment.GetEnvironmentVariable(ServerApp.InlineCompletionsVariable) is null)
{
    Environment.SetEnvironmentVariable(ServerApp.InlineCompletionsVariable, "1");
}

// raftkvd [options] <data-dir>: the real node behind the HTTP API. Everything else lives in Daemon, so tests can run
// the same path with a fake node.
return await Daemon.RunAsync(args, KvNodeFactory.StartAsync, Console.Out, Console.Error);
