using RaftKv.Raft;
namespace RaftKv.Simulation;

/// <summary>A broken invariant, with what is needed to replay it.</summary>
public sealed class SimulationViolation(int seed, long time, string message)
    : Exception($"seed {seed} at t={time}: {message} (replay: RAFTKV_SIM_SEED={seed} dotnet test --filter ReplaySeed)")
{
    public int Seed { get; } = seed;
}
