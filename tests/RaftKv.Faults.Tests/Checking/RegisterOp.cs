namespace RaftKv.Faults.Tests.Checking;

/// <summary>
/// One operation on one key's register, as the search sees it. <see cref="Writes"/> is the index (in the key's list)
/// of the write a read observed, or -1 when the read found the key missing; for a write it is the write's own index.
/// A write whose outcome is unknown has, as <see cref="Return"/>, the earliest return of a read that saw its value (it
/// must have taken effect before then); one whose value nobody read is left out (see <see cref="KeyHistories"/>).
/// </summary>
internal readonly record struct RegisterOp(int HistoryId, bool IsWrite, int Writes, long Call, long Return);
