using System.Text;

namespace RaftKv.Node.Runtime;

/// <summary>What a follower asks its leader to do for its caller.</summary>
internal enum ForwardedOp : byte
{
    Set = 1,
    Delete = 2,
    Get = 3,
    Join = 4,
    Remove = 5,
    Transfer = 6,
}

/// <summary>A forwarded call, as it travels to the leader (over the raft transport, or HTTP under raftkvd).</summary>
internal sealed record ForwardedRequest(
    ForwardedOp Op,
    IReadOnlyList<KeyValuePair<string, string>>? Pairs = null,
    string? Key = null,
    ReadLevel Level = ReadLevel.Linearizable,
    string? Id = null,
    string? RaftAddress = null,
    string? HttpAddress = null,
    bool Voter = true,
    ulong Incarnation = 0,
    string? ClusterId = null,
    TimeSpan Timeout = default)
{
    public byte[] Encode()
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8))
        {
            w.Write((byte)Op);
            w.Write(Pairs?.Count ?? 0);
            foreach (var (k, v) in Pairs ?? []) { w.Write(k); w.Write(v); }
            WriteOptional(w, Key);
            w.Write((byte)Level);
            WriteOptional(w, Id);
            WriteOptional(w, RaftAddress);
            WriteOptional(w, HttpAddress);
            w.Write(Voter);
            w.Write(Incarnation);
            WriteOptional(w, ClusterId);
            w.Write(Timeout.Ticks);
        }
        return ms.ToArray();
    }

    public static ForwardedRequest Decode(ReadOnlyMemory<byte> data)
    {
        using var r = new BinaryReader(new MemoryStream(data.ToArray()), Encoding.UTF8);
        var op = (ForwardedOp)r.ReadByte();
        if (!Enum.IsDefined(op)) throw new InvalidDataException($"unknown forwarded operation {(byte)op}");
        var count = r.ReadInt32();
        if (count < 0 || count > data.Length) throw new InvalidDataException("bad pair count");
        var pairs = new List<KeyValuePair<string, string>>(count);
        for (var i = 0; i < count; i++) pairs.Add(KeyValuePair.Create(r.ReadString(), r.ReadString()));
        var key = ReadOptional(r);
        var level = (ReadLevel)r.ReadByte();
        if (!Enum.IsDefined(level)) throw new InvalidDataException("unknown read level");
        var request = new ForwardedRequest(op, pairs, key, level, ReadOptional(r), ReadOptional(r), ReadOptional(r), r.ReadBoolean(), r.ReadUInt64(), ReadOptional(r));
        // What is left of the caller's request timeout; absent from a node that sent none.
        return r.BaseStream.Position < r.BaseStream.Length ? request with { Timeout = TimeSpan.FromTicks(Math.Max(0, r.ReadInt64())) } : request;
    }

    internal static void WriteOptional(BinaryWriter w, string? s)
    {
        w.Write(s is not null);
        if (s is not null) w.Write(s);
    }

    internal static string? ReadOptional(BinaryReader r) => r.ReadBoolean() ? r.ReadString() : null;
}

/// <summary>The leader's answer: a result (an index, a value or nothing) or the error it met.</summary>
internal sealed record ForwardedResult(ulong Index, string? Value, NodeException? Error)
{
    public byte[] Encode()
    {
        using var ms = new MemoryStream();
        using (var w = new BinaryWriter(ms, Encoding.UTF8))
        {
            w.Write(Error is null);
            if (Error is null)
            {
                w.Write(Index);
                ForwardedRequest.WriteOptional(w, Value);
            }
            else
            {
                w.Write((byte)Error.Kind);
                w.Write(Error.Message);
                ForwardedRequest.WriteOptional(w, Error.LeaderId);
                ForwardedRequest.WriteOptional(w, Error.LeaderHttpAddress);
            }
        }
        return ms.ToArray();
    }

    public static ForwardedResult Decode(byte[] data)
    {
        using var r = new BinaryReader(new MemoryStream(data), Encoding.UTF8);
        if (r.ReadBoolean()) return new ForwardedResult(r.ReadUInt64(), ForwardedRequest.ReadOptional(r), null);
        var kind = (NodeErrorKind)r.ReadByte();
        var message = r.ReadString();
        return new ForwardedResult(0, null, new NodeException(kind, message, ForwardedRequest.ReadOptional(r), ForwardedRequest.ReadOptional(r)));
    }
}
