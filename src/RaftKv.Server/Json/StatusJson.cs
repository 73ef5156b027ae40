using System.Globalization;
using System.Text.Json;
using RaftKv.Node;
using RaftKv.Raft;

namespace RaftKv.Server.Json;

/// <summary>
/// The three views of a <see cref="NodeStatus"/>: RaftKv's own <c>/status</c>, hashicorp-style <c>/raft/stats</c>
/// (every scalar a string, as <c>raft.Stats()</c> returns them, so existing dashboards parse it), and the fork's <c>/raft/cluster</c>.
/// </summary>
internal static class StatusJson
{
    /// <summary>
    /// <c>GET /status</c>:
    /// <code>
    /// {"id","state","term","ready","raft_address","http_address","cluster_id","incarnation","membership",
    ///  "leader": {"id","raft_address","http_address"} | null,
    ///  "followers": [{"id","raft_address","http_address","voter","state","match_index"}],  // every member but the leader
    ///  "log": {"commit_index","applied_index","last_log_index","last_log_term","last_snapshot_index","last_snapshot_term",
    ///          "configuration_index","fsm_pending"},
    ///  "last_contact_ms": number | null, "keys": number}
    /// </code>
    /// </summary>
    public static void WriteStatus(Utf8JsonWriter w, NodeStatus s)
    {
        w.WriteStartObject();
        w.WriteString("id"u8, s.Id);
        w.WriteString("state"u8, RoleName(s.Role));
        w.WriteNumber("term"u8, s.Term);
        w.WriteBoolean("ready"u8, s.Ready);
        w.WriteString("raft_address"u8, s.RaftAddress);
        w.WriteString("http_address"u8, s.HttpAddress);
        w.WriteString("cluster_id"u8, s.ClusterId);
        w.WriteString("incarnation"u8, Incarnations.Format(s.Incarnation));
        w.WriteString("membership"u8, MembershipName(s.Membership));
        if (s.LeaderId is null)
        {
            w.WriteNull("leader"u8);
        }
        else
        {
            w.WriteStartObject("leader"u8);
            w.WriteString("id"u8, s.LeaderId);
            w.WriteString("raft_address"u8, s.LeaderRaftAddress ?? "");
            w.WriteString("http_address"u8, s.LeaderHttpAddress ?? "");
            w.WriteEndObject();
        }
        w.WriteStartArray("followers"u8);
        foreach (var server in s.Servers)
        {
            if (server.Id == s.LeaderId)
            {
                continue;
            }
            w.WriteStartObject();
            w.WriteString("id"u8, server.Id);
            w.WriteString("raft_address"u8, server.RaftAddress);
            w.WriteString("http_address"u8, server.HttpAddress);
            w.WriteBoolean("voter"u8, server.Voter);
            w.WriteString("state"u8, server.State);
            if (server.MatchIndex is { } match)
            {
                w.WriteNumber("match_index"u8, match);
            }
            else
            {
                w.WriteNull("match_index"u8);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartObject("log"u8);
        w.WriteNumber("commit_index"u8, s.CommitIndex);
        w.WriteNumber("applied_index"u8, s.AppliedIndex);
        w.WriteNumber("last_log_index"u8, s.LastLogIndex);
        w.WriteNumber("last_log_term"u8, s.LastLogTerm);
        w.WriteNumber("last_snapshot_index"u8, s.LastSnapshotIndex);
        w.WriteNumber("last_snapshot_term"u8, s.LastSnapshotTerm);
        w.WriteNumber("configuration_index"u8, s.ConfigurationIndex);
        w.WriteNumber("fsm_pending"u8, s.FsmPending);
        w.WriteEndObject();
        if (s.LastContact is { } contact)
        {
            w.WriteNumber("last_contact_ms"u8, Math.Round(contact.TotalMilliseconds, 3));
        }
        else
        {
            w.WriteNull("last_contact_ms"u8);
        }
        w.WriteNumber("keys"u8, s.Keys);
        w.WriteEndObject();
    }

    /// <summary>
    /// <c>GET /raft/stats</c>, hashicorp <c>raft.Stats()</c> names and string values; <c>latest_configuration</c> is an
    /// array of <c>{"id","address","suffrage","http_address"}</c> as in the fork. RaftKv adds id, address, http_address,
    /// leader_id, leader_address, leader_http_address, keys and ready.
    /// </summary>
    public static void WriteStats(Utf8JsonWriter w, NodeStatus s)
    {
        w.WriteStartObject();
        w.WriteString("applied_index"u8, Str(s.AppliedIndex));
        w.WriteString("commit_index"u8, Str(s.CommitIndex));
        w.WriteString("fsm_pending"u8, Str(s.FsmPending));
        // hashicorp: "0" on the leader (it is its own contact), "never" before any contact, else a Go duration.
        w.WriteString("last_contact"u8, s.Role == Role.Leader ? "0" : s.LastContact is { } c ? Durations.Format(c) : "never");
        w.WriteString("last_log_index"u8, Str(s.LastLogIndex));
        w.WriteString("last_log_term"u8, Str(s.LastLogTerm));
        w.WriteString("last_snapshot_index"u8, Str(s.LastSnapshotIndex));
        w.WriteString("last_snapshot_term"u8, Str(s.LastSnapshotTerm));
        w.WriteStartArray("latest_configuration"u8);
        foreach (var server in s.Servers)
        {
            w.WriteStartObject();
            w.WriteString("id"u8, server.Id);
            w.WriteString("address"u8, server.RaftAddress);
            w.WriteString("suffrage"u8, server.Voter ? "Voter" : "Nonvoter");
            w.WriteString("http_address"u8, server.HttpAddress);
            w.WriteString("incarnation"u8, Incarnations.Format(server.Incarnation));
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteString("latest_configuration_index"u8, Str(s.ConfigurationIndex));
        // hashicorp counts the other voters.
        w.WriteString("num_peers"u8, Str((ulong)s.Servers.Count(x => x.Voter && x.Id != s.Id)));
        // The same names as /status and /raft/cluster (PreCandidate included, though hashicorp has no such state): one
        // node, asked at once on two paths, must not report two roles.
        w.WriteString("state"u8, RoleName(s.Role));
        w.WriteString("term"u8, Str(s.Term));
        w.WriteString("id"u8, s.Id);
        w.WriteString("address"u8, s.RaftAddress);
        w.WriteString("http_address"u8, s.HttpAddress);
        w.WriteString("leader_id"u8, s.LeaderId ?? "");
        w.WriteString("leader_address"u8, s.LeaderRaftAddress ?? "");
        w.WriteString("leader_http_address"u8, s.LeaderHttpAddress ?? "");
        w.WriteString("keys"u8, s.Keys.ToString(CultureInfo.InvariantCulture));
        w.WriteString("ready"u8, s.Ready ? "true" : "false");
        w.WriteString("cluster_id"u8, s.ClusterId);
        w.WriteString("incarnation"u8, Incarnations.Format(s.Incarnation));
        w.WriteString("membership"u8, MembershipName(s.Membership));
        w.WriteEndObject();
    }

    /// <summary>
    /// <c>GET /raft/cluster</c>, the fork's shape: <c>{"cluster_id", "current":{id,address,state}, "leader":{...}|null, "servers":[{id,address,state}]}</c>,
    /// with <c>address</c> the raft address; each object also carries <c>http_address</c>.
    /// </summary>
    public static void WriteCluster(Utf8JsonWriter w, NodeStatus s)
    {
        w.WriteStartObject();
        w.WriteString("cluster_id"u8, s.ClusterId);
        w.WritePropertyName("current"u8);
        WriteMember(w, s.Id, s.RaftAddress, s.HttpAddress, RoleName(s.Role));
        w.WritePropertyName("leader"u8);
        if (s.LeaderId is null)
        {
            w.WriteNullValue();
        }
        else
        {
            WriteMember(w, s.LeaderId, s.LeaderRaftAddress ?? "", s.LeaderHttpAddress ?? "", "Leader");
        }
        w.WriteStartArray("servers"u8);
        foreach (var server in s.Servers)
        {
            WriteMember(w, server.Id, server.RaftAddress, server.HttpAddress, server.State);
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    /// <summary>A node's standing in its configuration, as <c>/status</c>, <c>/raft/stats</c> and <c>/readyz</c> say it.</summary>
    public static string MembershipName(Membership m) => m switch
    {
        Membership.NotJoined => "not_joined",
        Membership.Voter => "voter",
        Membership.NonVoter => "non_voter",
        Membership.Removed => "removed",
        Membership.PreviousIncarnation => "previous_incarnation",
        _ => m.ToString(),
    };

    /// <summary>The role's name as users know it.</summary>
    public static string RoleName(Role role) => role switch
    {
        Role.Leader => "Leader",
        Role.Follower => "Follower",
        Role.Candidate => "Candidate",
        Role.PreCandidate => "PreCandidate",
        _ => role.ToString(),
    };

    private static void WriteMember(Utf8JsonWriter w, string id, string address, string httpAddress, string state)
    {
        w.WriteStartObject();
        w.WriteString("id"u8, id);
        w.WriteString("address"u8, address);
        w.WriteString("http_address"u8, httpAddress);
        w.WriteString("state"u8, state);
        w.WriteEndObject();
    }

    private static string Str(ulong value) => value.ToString(CultureInfo.InvariantCulture);
}
