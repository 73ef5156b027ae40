namespace RaftKv.Simulation;

/// <summary>The simulator's clock, one time unit a millisecond: the ReadyProcessor's deadlines and timeouts read it.</summary>
internal sealed class SimTime : TimeProvider
{
    public long Now { get; set; }

    public override long TimestampFrequency => 1000;

    public override long GetTimestamp() => Now;
}
