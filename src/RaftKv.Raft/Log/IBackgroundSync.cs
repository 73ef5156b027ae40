namespace RaftKv.Raft;

/// <summary>
/// A sync of an <see cref="IRaftLogStorage"/> split off the thread that owns it (<see cref="IRaftLogStorage.BeginSync"/>):
/// the flush runs on another thread while writes go on, and the owner completes it afterwards.
/// </summary>
public interface IBackgroundSync
{
    /// <summary>
    /// Makes durable what was written before the sync began; safe on any thread, concurrently with the owner's writes.
    /// One flush covers every sync begun before it, so a caller may flush only the newest of several.
    /// </summary>
    /// <exception cref="IOException">The device reported an error: nothing written since the last good sync is durable.</exception>
    void Flush();

    /// <summary>Marks this sync as done by the flush of <paramref name="newer"/>, begun after it on the same storage.</summary>
    void CoveredBy(IBackgroundSync newer);
}
