using RaftKv.Raft;
namespace RaftKv.Simulation;

/// <summary>A broken invariant, with what is needed to replay it (the seed, and the test that replays that kind of schedule).</summary>
public sealed class SimulationViolation(int seed, long time, string message, string replayTest = "ReplaySeed")
    : Exception($"seed {seed} at t={time}: {message} (replay: RAFTKV_SIM_SEED={seed} dotnet test --filter {replayTest})")
{
    public int Seed { get; } = seed;
}
