using System.Buffers.Binary;
using RaftKv.Raft.Tests.Harness;

namespace RaftKv.Raft.Tests;

/// <summary>
/// Messages no correct peer sends: <see cref="MessageValidator"/> names what is wrong, and the core drops them without
/// throwing or changing anything (an exception in the core stops the node's raft loop).
/// </summary>
public sealed class MalformedMessageTests
{
    private static readonly byte[] GoodConfig = new ClusterConfig([new Member("n1", "a", true)]).Encode();

    /// <summary>A configuration whose first string declares int.MaxValue bytes: <c>pos + n</c> overflows.</summary>
    public static byte[] OverflowingConfig()
    {
        var bytes = new byte[4 + 1 + 4 + 8];
        BinaryPrimitives.WriteInt32LittleEndian(bytes, 1);
        bytes[4] = 1;
        BinaryPrimitives.WriteInt32LittleEndian(bytes.AsSpan(5), int.MaxValue);
        return bytes;
    }

    public static TheoryData<string, Message> Malformed(ulong index, ulong logTerm, ulong term) => new()
    {
        { "skips", Append(index, logTerm, term, new Entry(index + 2, term, EntryType.Normal, default)) },
        { "not contiguous", Append(index, logTerm, term, new Entry(index + 1, term, EntryType.Normal, default), new Entry(index + 3, term, EntryType.Normal, default)) },
        { "term decreases", Append(index, logTerm, term, new Entry(index + 1, term, EntryType.Normal, default), new Entry(index + 2, term - 1, EntryType.Normal, default)) },
        { "above the leader's term", Append(index, logTerm, term, new Entry(index + 1, term + 1, EntryType.Normal, default)) },
        { "undecodable configuration", Append(index, logTerm, term, new Entry(index + 1, term, EntryType.Configuration, new byte[] { 1, 2, 3 })) },
        { "configuration with an overflowing length", Append(index, logTerm, term, new Entry(index + 1, term, EntryType.Configuration, OverflowingConfig())) },
        { "configuration without voters", Append(index, logTerm, term, new Entry(index + 1, term, EntryType.Configuration, ClusterConfig.Empty.Encode())) },
        { "index overflow", Append(ulong.MaxValue, logTerm, term, new Entry(0, term, EntryType.Normal, default)) },
        { "snapshot without metadata", new Message { Type = MessageType.InstallSnapshot, From = "n9", To = "n2", Term = term } },
        { "entries on a heartbeat", new Message { Type = MessageType.Heartbeat, From = "n9", To = "n2", Term = term, Entries = new[] { new Entry(index + 1, term, EntryType.Normal, default) } } },
    };

    private static Message Append(ulong index, ulong logTerm, ulong term, params Entry[] entries) =>
        new() { Type = MessageType.Append, From = "n9", To = "n2", Term = term, Index = index, LogTerm = logTerm, Commit = index + 1, Entries = entries };

    public static TheoryData<string, Message> Cases => Malformed(3, 2, 7);

    [Theory]
    [MemberData(nameof(Cases))]
    public void The_validator_names_the_problem(string name, Message m)
    {
        Assert.False(string.IsNullOrEmpty(MessageValidator.FindProblem(m)), name);
    }

    [Fact]
    public void Well_formed_messages_pass()
    {
        var good = new[]
        {
            Append(3, 2, 7, new Entry(4, 2, EntryType.Normal, default), new Entry(5, 7, EntryType.Configuration, GoodConfig)),
            Append(0, 0, 1),
            new Message { Type = MessageType.InstallSnapshot, From = "n9", To = "n2", Term = 7, Snapshot = new SnapshotMetadata(9, 7, ClusterConfig.Decode(GoodConfig)) },
            new Message { Type = MessageType.AppendResponse, From = "n9", To = "n2", Term = 7, Index = 4, Reject = true, RejectHint = 2 },
            new Message { Type = MessageType.Vote, From = "n9", To = "n2", Term = 7, Index = 4, LogTerm = 6 },
        };
        foreach (var m in good) Assert.Null(MessageValidator.FindProblem(m));
    }

    [Fact]
    public void A_configuration_whose_length_overflows_is_a_format_error()
    {
        Assert.Throws<FormatException>(() => ClusterConfig.Decode(OverflowingConfig()));
    }

    /// <summary>Delivered straight to a follower's core (as an in-process transport would): dropped, nothing changes, nothing throws.</summary>
    [Fact]
    public void The_core_drops_malformed_messages_without_throwing_or_changing_state()
    {
        var c = new TestCluster(3);
        c.Elect("n1");
        c.Propose("n1", "x");
        c.Settle();
        const string follower = "n2";
        var core = c[follower];
        var before = (core.Term, core.LastIndex, core.CommitIndex, core.Config, core.Leader);
        foreach (var row in Malformed(core.LastIndex, core.LastTerm, core.Term + 5))
        {
            var m = (Message)row[1];
            var addressed = new Message
            {
                Type = m.Type, From = "n9", To = follower, Term = m.Term, Index = m.Index, LogTerm = m.LogTerm, Commit = m.Commit,
                Entries = m.Entries, Snapshot = m.Snapshot,
            };
            core.Step(addressed);
            Assert.False(core.HasReady, $"{row[0]}: the core acted on a malformed message");
        }
        Assert.Equal(before, (core.Term, core.LastIndex, core.CommitIndex, core.Config, core.Leader));
    }
}
