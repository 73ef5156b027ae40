using RaftKv.Server.Hosting;

// raftkvd [options] <data-dir>: the real node behind the HTTP API. Everything else lives in Daemon, so tests can run
// the same path with a fake node.
return await Daemon.RunAsync(args, KvNodeFactory.StartAsync, Console.Out, Console.Error);
