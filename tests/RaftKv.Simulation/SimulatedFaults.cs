namespace RaftKv.Simulation;

/// <summary>Thrown by a simulated disk armed to crash: the process dies in the middle of what it was doing.</summary>
internal sealed class SimulatedCrash() : Exception("simulated crash");

/// <summary>A simulated flush that failed (the device reported an error): the node stops, as raftkvd does.</summary>
internal sealed class SimulatedDiskFailure() : IOException("the device reported an error (simulated)");

internal static class SimulatedFault
{
    /// <summary>True for the faults the simulator injects (a node that meets one stops), also when the runtime wrapped them.</summary>
    public static bool IsInjected(Exception e) =>
        e is SimulatedCrash or SimulatedDiskFailure || e.InnerException is SimulatedCrash or SimulatedDiskFailure;
}
