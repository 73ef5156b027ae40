namespace RaftKv.Raft;

/// <summary>
/// Checks that a message a peer sent is one a correct peer could have sent, before the core acts on it. The core assumes
/// well-formed input (entries contiguous after Index, decodable configurations, a snapshot on InstallSnapshot), and a
/// message that breaks those assumptions must be dropped, never allowed to throw inside the raft loop: a buggy, corrupt
/// or hostile peer must not be able to stop a node.
/// </summary>
/// <remarks>
/// Only the shape of a message is checked, not whether it fits this node's log (that is the core's job, and a valid
/// message may well be stale). Normal entries' commands are not looked at: the leader has replicated them, so a follower
/// that refused one would stall the log; the state machine skips a command it cannot decode, the same way on every node.
/// </remarks>
public static class MessageValidator
{
    /// <summary>Null when <paramref name="m"/> is well formed; otherwise what is wrong with it, in a phrase for a log line.</summary>
    public static string? FindProblem(Message m)
    {
        ArgumentNullException.ThrowIfNull(m);
        if (!Enum.IsDefined(m.Type)) return $"unknown message type {(byte)m.Type}";
        if (m.From.Length == 0) return "no sender id";
        if (m.From == m.To) return "sender and recipient are the same node";
        if (m.Entries.Length > 0 && m.Type != MessageType.Append) return $"{m.Type} carries {m.Entries.Length} entries; only Append may";
        switch (m.Type)
        {
            case MessageType.Append:
                return FindEntriesProblem(m);
            case MessageType.InstallSnapshot:
                // What the snapshot holds is checked where its data is stored; the core needs its metadata.
                return m.Snapshot is null ? "InstallSnapshot without snapshot metadata" : null;
            default:
                return null;
        }
    }

    /// <summary>Append: entries numbered Index+1, Index+2, ... with terms that never decrease, never above the message's term, and decodable configurations.</summary>
    private static string? FindEntriesProblem(Message m)
    {
        if (m.LogTerm > m.Term) return $"previous entry's term {m.LogTerm} is above the leader's term {m.Term}";
        if (m.Index == 0 && m.LogTerm != 0) return $"previous entry 0 has term {m.LogTerm}, not 0";
        var entries = m.Entries.Span;
        if (entries.IsEmpty) return null;
        if (m.Index > ulong.MaxValue - (ulong)entries.Length) return $"{entries.Length} entries after index {m.Index} overflow the index";
        var previousTerm = m.LogTerm;
        for (var i = 0; i < entries.Length; i++)
        {
            var e = entries[i];
            var expected = m.Index + 1 + (ulong)i;
            if (e.Index != expected) return $"entry {i} has index {e.Index}, expected {expected} (entries must follow index {m.Index} without gaps)";
            if (e.Term < previousTerm) return $"entry {e.Index} has term {e.Term}, below the term {previousTerm} before it";
            if (e.Term > m.Term) return $"entry {e.Index} has term {e.Term}, above the leader's term {m.Term}";
            previousTerm = e.Term;
            if (e.Type == EntryType.Configuration)
            {
                if (FindConfigurationProblem(e.Data.Span) is { } problem) return $"configuration entry {e.Index}: {problem}";
            }
            else if (e.Type != EntryType.Normal)
            {
                return $"entry {e.Index} has unknown type {(byte)e.Type}";
            }
        }
        return null;
    }

    /// <summary>Null when <paramref name="data"/> decodes as a configuration with at least one voter (as every configuration entry a leader writes has).</summary>
    public static string? FindConfigurationProblem(ReadOnlySpan<byte> data)
    {
        ClusterConfig config;
        try
        {
            config = ClusterConfig.Decode(data);
        }
        catch (FormatException e)
        {
            return "undecodable: " + e.Message;
        }
        return config.Voters.Length == 0 ? "no voters" : null;
    }
}
