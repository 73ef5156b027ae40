using System.Buffers.Binary;
using System.Collections.Immutable;
using System.Text;

namespace RaftKv.Raft;

/// <summary>
/// One server of the cluster: its id, its raft address, its suffrage and incarnation, and the addresses of its other
/// services (<see cref="HttpAddress"/>). The core treats every address as opaque text: the node reads and checks them
/// where they come in (options, joins) and dials them.
/// </summary>
/// <param name="Id">Unique, stable server id.</param>
/// <param name="Address">Where other servers reach its raft transport (<c>host:port</c>; opaque to the core).</param>
/// <param name="IsVoter">Voters vote and count in quorums; non-voters only receive the log.</param>
/// <param name="Incarnation">
/// Which life of the server this is: a number the server draws when its storage is created, so a server that lost its
/// data comes back as another incarnation under the same id. Messages from any other incarnation are ignored (a server
/// that forgot what it acknowledged must not vote or count as the voter it was). 0: not known yet, nothing is checked.
/// </param>
public sealed record Member(string Id, string Address, bool IsVoter, ulong Incarnation = 0)
{
    /// <summary>
    /// Where the server takes client requests over HTTP (<c>host:port</c>), so that other members can forward them;
    /// empty for a server without one (an embedded node). The first of the optional addresses a member may carry,
    /// each stored as a tagged field (see <see cref="ClusterConfig.Encode"/>) so that adding one needs no new format.
    /// </summary>
    public string HttpAddress { get; init; } = "";
}

/// <summary>
/// A complete cluster configuration. Every configuration log entry carries a whole one, so a node adopts the newest entry's
/// configuration as soon as it is appended and falls back to the previous one if that entry is truncated (thesis §4.1).
/// It also carries the cluster's identity, drawn when the cluster is founded, so it travels wherever the log and
/// snapshots go and every member knows it without a file of its own.
/// </summary>
public sealed class ClusterConfig : IEquatable<ClusterConfig>
{
    /// <summary>The configuration of a node that has not joined any cluster yet.</summary>
    public static ClusterConfig Empty { get; } = new(ImmutableArray<Member>.Empty);

    private readonly ImmutableArray<Member> _members;

    /// <summary>Creates a configuration; ids must be unique.</summary>
    /// <param name="members">The servers.</param>
    /// <param name="clusterId">The cluster's identity; empty for a cluster founded before identities existed.</param>
    public ClusterConfig(IEnumerable<Member> members, string clusterId = "")
    {
        ArgumentNullException.ThrowIfNull(clusterId);
        ClusterId = clusterId;
        var sorted = members.OrderBy(m => m.Id, StringComparer.Ordinal).ToImmutableArray();
        for (var i = 1; i < sorted.Length; i++)
        {
            if (sorted[i].Id == sorted[i - 1].Id) throw new ArgumentException($"duplicate member id '{sorted[i].Id}'", nameof(members));
        }
        foreach (var m in sorted)
        {
            if (string.IsNullOrEmpty(m.Id)) throw new ArgumentException("member id must not be empty", nameof(members));
        }
        _members = sorted;
        Voters = sorted.Where(m => m.IsVoter).Select(m => m.Id).ToImmutableArray();
    }

    /// <summary>The identity of the cluster this configuration belongs to (empty: founded before identities existed).</summary>
    public string ClusterId { get; }

    /// <summary>All members, voters and non-voters, ordered by id.</summary>
    public ImmutableArray<Member> Members => _members;

    /// <summary>Ids of the voters, ordered.</summary>
    public ImmutableArray<string> Voters { get; }

    /// <summary>The member with this id, or null.</summary>
    public Member? Find(string id)
    {
        foreach (var m in _members) if (m.Id == id) return m;
        return null;
    }

    /// <summary>True if <paramref name="id"/> is a voter here.</summary>
    public bool IsVoter(string id) => Find(id)?.IsVoter == true;

    /// <summary>Votes needed for a majority of the voters.</summary>
    public int Quorum => Voters.Length / 2 + 1;

    /// <summary>
    /// Applies a single-server change, or explains why it cannot be applied.
    /// Returns null and sets <paramref name="error"/> when the change makes no sense for this configuration.
    /// </summary>
    /// <remarks>
    /// A change naming another incarnation of an existing member replaces it. Replacing a voter by a voter would swap
    /// two servers in one step, whose old and new majorities need not overlap, so a voter is replaced by a non-voter
    /// (one voter fewer: a single-server change) and promoted later.
    /// </remarks>
    public ClusterConfig? Apply(ConfigChange change, out string? error)
    {
        error = null;
        var existing = Find(change.NodeId);
        var rest = _members.Where(m => m.Id != change.NodeId);
        switch (change.Type)
        {
            case ConfigChangeType.AddVoter:
            case ConfigChangeType.AddNonVoter:
            {
                var voter = change.Type == ConfigChangeType.AddVoter;
                var address = string.IsNullOrEmpty(change.Address) ? existing?.Address ?? "" : change.Address;
                var httpAddress = change.HttpAddress ?? existing?.HttpAddress ?? "";
                var replaces = existing is not null && change.Incarnation != 0 && existing.Incarnation != 0 && existing.Incarnation != change.Incarnation;
                var incarnation = change.Incarnation != 0 ? change.Incarnation : existing?.Incarnation ?? 0;
                if (replaces && existing!.IsVoter && voter)
                {
                    error = $"node '{change.NodeId}' is a voter of another incarnation ({Incarnations.Format(existing.Incarnation)}); it must be replaced as a non-voter first";
                    return null;
                }
                // Adding a voter that exists as a voter only updates the address; demoting through "add non-voter" is
                // refused, except to replace a voter that lost its data (that server is gone: it cannot vote again).
                if (existing is { IsVoter: true } && !voter && !replaces)
                {
                    error = $"node '{change.NodeId}' is a voter; remove it first to make it a non-voter";
                    return null;
                }
                if (existing is not null && existing.IsVoter == voter && existing.Address == address && existing.HttpAddress == httpAddress
                    && existing.Incarnation == incarnation)
                {
                    error = null;
                    return this;
                }
                return new ClusterConfig(rest.Append(new Member(change.NodeId, address, voter, incarnation) { HttpAddress = httpAddress }), ClusterId);
            }
            case ConfigChangeType.Remove:
                if (existing is null)
                {
                    error = $"node '{change.NodeId}' is not a member";
                    return null;
                }
                if (existing.IsVoter && Voters.Length == 1)
                {
                    error = "cannot remove the last voter";
                    return null;
                }
                return new ClusterConfig(rest, ClusterId);
            case ConfigChangeType.AssignClusterId:
                if (ClusterId.Length > 0 || string.IsNullOrEmpty(change.ClusterId))
                {
                    error = ClusterId.Length > 0 ? $"the cluster already has the id {ClusterId}" : "no cluster id given";
                    return null;
                }
                return new ClusterConfig(_members, change.ClusterId);
            default:
                error = $"unknown change type {change.Type}";
                return null;
        }
    }

    // Mark the encodings after the first, which began with the member count (never negative). -2 added the cluster id
    // and incarnations; -3 keeps a member's other addresses in tagged fields instead of "raft|http" in its address.
    private const int FormatWithIdentity = -2;
    private const int FormatWithMemberFields = -3;

    // Tags of a member's optional fields. A decoder skips tags it does not know, so a field can be added under a new
    // tag without a new format (a node of an older version reading it, after a downgrade, loses only that field).
    private const byte HttpAddressTag = 1;

    // What encodings before -3 put between a member's raft address and its HTTP address.
    private const char LegacyAddressSeparator = '|';

    /// <summary>Binary form stored in configuration entries and snapshot metadata.</summary>
    /// <remarks><c>i32 -3 | string clusterId | i32 count | count × member</c>, a member being <c>u8 voter | string id |
    /// string address | u64 incarnation | u8 fieldCount | fieldCount × (u8 tag | string value)</c>, with only non-empty
    /// optional fields written (tag 1: HTTP address). Strings are <c>i32 length | UTF-8</c>, integers little-endian.</remarks>
    public byte[] Encode()
    {
        var size = 4 + 4 + Encoding.UTF8.GetByteCount(ClusterId) + 4;
        foreach (var m in _members)
        {
            size += 1 + 4 + Encoding.UTF8.GetByteCount(m.Id) + 4 + Encoding.UTF8.GetByteCount(m.Address) + 8 + 1;
            if (m.HttpAddress.Length > 0) size += 1 + 4 + Encoding.UTF8.GetByteCount(m.HttpAddress);
        }
        var buffer = new byte[size];
        var span = buffer.AsSpan();
        BinaryPrimitives.WriteInt32LittleEndian(span, FormatWithMemberFields);
        var pos = 4;
        pos += WriteString(span[pos..], ClusterId);
        BinaryPrimitives.WriteInt32LittleEndian(span[pos..], _members.Length);
        pos += 4;
        foreach (var m in _members)
        {
            buffer[pos++] = m.IsVoter ? (byte)1 : (byte)0;
            pos += WriteString(span[pos..], m.Id);
            pos += WriteString(span[pos..], m.Address);
            BinaryPrimitives.WriteUInt64LittleEndian(span[pos..], m.Incarnation);
            pos += 8;
            buffer[pos++] = m.HttpAddress.Length > 0 ? (byte)1 : (byte)0;
            if (m.HttpAddress.Length > 0)
            {
                buffer[pos++] = HttpAddressTag;
                pos += WriteString(span[pos..], m.HttpAddress);
            }
        }
        return buffer;
    }

    /// <summary>
    /// Reads the form written by <see cref="Encode"/>, or one written by an earlier version: without identities (no
    /// cluster id, every incarnation 0), or with a member's HTTP address in its address as <c>raft|http</c>. Throws
    /// <see cref="FormatException"/> on malformed input.
    /// </summary>
    public static ClusterConfig Decode(ReadOnlySpan<byte> data)
    {
        if (data.Length < 4) throw new FormatException("configuration too short");
        var pos = 0;
        var count = BinaryPrimitives.ReadInt32LittleEndian(data);
        pos += 4;
        var withFields = count == FormatWithMemberFields;
        var withIdentity = withFields || count == FormatWithIdentity;
        var clusterId = "";
        if (withIdentity)
        {
            clusterId = ReadString(data, ref pos);
            if (pos + 4 > data.Length) throw new FormatException("configuration truncated");
            count = BinaryPrimitives.ReadInt32LittleEndian(data[pos..]);
            pos += 4;
        }
        // Each member takes at least a suffrage byte and two string lengths (and an incarnation, and a field count): a
        // count the bytes cannot hold is refused before anything is allocated for it.
        var minMemberBytes = withFields ? 18 : withIdentity ? 17 : 9;
        if (count < 0 || count > (data.Length - pos) / minMemberBytes) throw new FormatException($"bad member count {count} for {data.Length - pos} bytes");
        var members = new List<Member>(count);
        for (var i = 0; i < count; i++)
        {
            if (pos >= data.Length) throw new FormatException("configuration truncated");
            var voter = data[pos++] switch { 0 => false, 1 => true, var b => throw new FormatException($"bad suffrage byte {b}") };
            var id = ReadString(data, ref pos);
            var address = ReadString(data, ref pos);
            ulong incarnation = 0;
            if (withIdentity)
            {
                if (pos + 8 > data.Length) throw new FormatException("configuration truncated");
                incarnation = BinaryPrimitives.ReadUInt64LittleEndian(data[pos..]);
                pos += 8;
            }
            var httpAddress = "";
            if (withFields)
            {
                if (pos >= data.Length) throw new FormatException("configuration truncated");
                var fields = data[pos++];
                for (var f = 0; f < fields; f++)
                {
                    if (pos >= data.Length) throw new FormatException("configuration truncated");
                    var tag = data[pos++];
                    var value = ReadString(data, ref pos);
                    if (tag == HttpAddressTag) httpAddress = value;
                }
            }
            else if (address.IndexOf(LegacyAddressSeparator) is var bar and >= 0)
            {
                // A raft address never holds the separator (host names are letters, digits, '-', '_' and '.').
                httpAddress = address[(bar + 1)..];
                address = address[..bar];
            }
            members.Add(new Member(id, address, voter, incarnation) { HttpAddress = httpAddress });
        }
        if (pos != data.Length) throw new FormatException("trailing bytes after configuration");
        try
        {
            return new ClusterConfig(members, clusterId);
        }
        catch (ArgumentException e)
        {
            throw new FormatException(e.Message);
        }
    }

    private static int WriteString(Span<byte> span, string s)
    {
        var n = Encoding.UTF8.GetBytes(s, span[4..]);
        BinaryPrimitives.WriteInt32LittleEndian(span, n);
        return 4 + n;
    }

    private static string ReadString(ReadOnlySpan<byte> data, ref int pos)
    {
        if (pos + 4 > data.Length) throw new FormatException("configuration truncated");
        var n = BinaryPrimitives.ReadInt32LittleEndian(data[pos..]);
        pos += 4;
        // Compared as remaining bytes: pos + n overflows for a forged length near int.MaxValue.
        if (n < 0 || n > data.Length - pos) throw new FormatException("configuration truncated");
        var s = Encoding.UTF8.GetString(data.Slice(pos, n));
        pos += n;
        return s;
    }

    /// <inheritdoc />
    public bool Equals(ClusterConfig? other) => other is not null && ClusterId == other.ClusterId && _members.SequenceEqual(other._members);

    /// <inheritdoc />
    public override bool Equals(object? obj) => Equals(obj as ClusterConfig);

    /// <inheritdoc />
    public override int GetHashCode()
    {
        var h = new HashCode();
        h.Add(ClusterId);
        foreach (var m in _members) h.Add(m);
        return h.ToHashCode();
    }

    /// <inheritdoc />
    public override string ToString() => "[" + string.Join(", ", _members.Select(m => m.IsVoter ? m.Id : m.Id + "(non-voter)")) + "]";
}
