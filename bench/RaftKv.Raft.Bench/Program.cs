using RaftKv.Raft.Bench;

// Commands: "core" (throughput and allocation of the consensus core) and "soak" (simulator seeds).
var cmd = args.Length > 0 ? args[0] : "core";
var rest = args.Skip(1).ToArray();
return cmd switch
{
    "core" => CoreBenchmark.Run(rest),
    "soak" => Soak.Run(rest),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine("usage: RaftKv.Raft.Bench core [--seconds N] [--batch N] [--size BYTES]");
    Console.Error.WriteLine("       RaftKv.Raft.Bench soak [--seeds N] [--start S] [--wipes]");
    return 2;
}
