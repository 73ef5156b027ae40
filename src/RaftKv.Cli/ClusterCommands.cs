using System.CommandLine;
using System.Globalization;
using RaftKv.Client;

namespace RaftKv.Cli;

/// <summary><c>status</c>, <c>applied-index</c>, <c>join</c>, <c>remove</c>, <c>transfer-leadership</c>, <c>snapshot</c>.</summary>
internal static class ClusterCommands
{
    public static void Add(RootCommand root, Func<ParseResult, CliContext> context)
    {
        root.Subcommands.Add(Status(context));
        root.Subcommands.Add(AppliedIndex(context));
        root.Subcommands.Add(Join(context));
        root.Subcommands.Add(Remove(context));
        root.Subcommands.Add(Transfer(context));
        root.Subcommands.Add(Snapshot(context));
    }

    private static Command Status(Func<ParseResult, CliContext> context)
    {
        var command = new Command("status", "Every member's role, term, log indexes and lag, each asked directly");
        command.SetAction(async (r, ct) =>
        {
            var c = context(r);
            using var client = c.CreateClient();
            var members = await client.GetClusterStatusAsync(cancellationToken: ct);
            var leaderApplied = members.FirstOrDefault(m => m.Status?.IsLeader == true)?.Status?.Log.AppliedIndex;
            if (c.Output.Json)
            {
                c.Output.WriteJson(w =>
                {
                    w.WriteStartArray();
                    foreach (var m in members)
                    {
                        w.WriteStartObject();
                        w.WriteString("id", m.Id);
                        w.WriteString("raft_address", m.RaftAddress);
                        w.WriteString("http_address", m.HttpAddress);
                        if (m.Status is { } s)
                        {
                            w.WriteString("role", s.State);
                            w.WriteNumber("term", s.Term);
                            w.WriteNumber("commit_index", s.Log.CommitIndex);
                            w.WriteNumber("applied_index", s.Log.AppliedIndex);
                            if (Lag(leaderApplied, s) is { } lag)
                            {
                                w.WriteNumber("lag", lag);
                            }
                            else
                            {
                                w.WriteNull("lag");
                            }
                            if (s.LastContactMs is { } contact)
                            {
                                w.WriteNumber("last_contact_ms", contact);
                            }
                            else
                            {
                                w.WriteNull("last_contact_ms");
                            }
                            w.WriteBoolean("ready", s.Ready);
                            w.WriteString("leader", s.Leader?.Id);
                        }
                        else
                        {
                            w.WriteString("role", "unreachable");
                            w.WriteString("error", m.Error);
                        }
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                });
                return ExitCodes.Success;
            }
            var rows = members.Select(m => m.Status is { } s
                ? new[]
                {
                    m.Id, m.RaftAddress, m.HttpAddress, s.State, Num(s.Term), Num(s.Log.CommitIndex), Num(s.Log.AppliedIndex),
                    Lag(leaderApplied, s) is { } lag ? Num(lag) : "-",
                    s.IsLeader ? "-" : s.LastContactMs is { } contact ? ShortDuration(contact) : "never",
                }
                : [m.Id, m.RaftAddress, m.HttpAddress, "unreachable", "-", "-", "-", "-", "-"]).ToList();
            c.Output.Table(["ID", "RAFT ADDRESS", "HTTP ADDRESS", "ROLE", "TERM", "COMMIT", "APPLIED", "LAG", "LAST CONTACT"], rows,
                (column, cell) => column == 3 ? Output.RoleColor(cell) : null);
            foreach (var m in members.Where(m => m.Error is not null))
            {
                c.Output.Line($"{m.Id}: {m.Error}");
            }
            return ExitCodes.Success;
        });
        return command;
    }

    /// <summary>Entries this node has applied fewer than the leader (null when no leader answered).</summary>
    private static ulong? Lag(ulong? leaderApplied, RaftKvNodeStatus s) =>
        leaderApplied is { } applied ? applied > s.Log.AppliedIndex ? applied - s.Log.AppliedIndex : 0 : null;

    private static Command AppliedIndex(Func<ParseResult, CliContext> context)
    {
        var command = new Command("applied-index", "Each member's applied index (as raft-example's manager prints it)");
        command.SetAction(async (r, ct) =>
        {
            var c = context(r);
            using var client = c.CreateClient();
            var members = await client.GetClusterStatusAsync(cancellationToken: ct);
            if (c.Output.Json)
            {
                c.Output.WriteJson(w =>
                {
                    w.WriteStartArray();
                    foreach (var m in members)
                    {
                        w.WriteStartObject();
                        w.WriteString("id", m.Id);
                        w.WriteString("http_address", m.HttpAddress);
                        if (m.Status is { } s)
                        {
                            w.WriteNumber("applied_index", s.Log.AppliedIndex);
                        }
                        else
                        {
                            w.WriteNull("applied_index");
                            w.WriteString("error", m.Error);
                        }
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                });
            }
            else
            {
                c.Output.Table(["ID", "HTTP ADDRESS", "APPLIED INDEX"],
                    members.Select(m => new[] { m.Id, m.HttpAddress, m.Status is { } s ? Num(s.Log.AppliedIndex) : "unreachable" }).ToList(),
                    (column, cell) => column == 2 ? Output.RoleColor(cell) : null);
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Join(Func<ParseResult, CliContext> context)
    {
        var id = new Argument<string>("id") { Description = "The new node's id" };
        var raftAddr = new Argument<string>("raft-addr") { Description = "Its raft address, host:port" };
        var httpAddr = new Option<string?>("--http-addr") { Description = "Its HTTP address, so other nodes can forward to it", HelpName = "host:port" };
        var nonVoter = new Option<bool>("--non-voter") { Description = "Join as a non-voter (receives the log, never votes)" };
        var command = new Command("join", "Add a node to the cluster (joining again with the same id is harmless)") { id, raftAddr, httpAddr, nonVoter };
        command.SetAction(async (r, ct) =>
        {
            var c = context(r);
            var nodeId = r.GetRequiredValue(id);
            var voter = !r.GetValue(nonVoter);
            using var client = c.CreateClient();
            await client.JoinAsync(nodeId, r.GetRequiredValue(raftAddr), r.GetValue(httpAddr), voter, cancellationToken: ct);
            Done(c, nodeId, $"{nodeId} joined as a {(voter ? "voter" : "non-voter")}");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Remove(Func<ParseResult, CliContext> context)
    {
        var id = new Argument<string>("id") { Description = "The node to remove" };
        var command = new Command("remove", "Remove a node from the cluster") { id };
        command.SetAction(async (r, ct) =>
        {
            var c = context(r);
            var nodeId = r.GetRequiredValue(id);
            using var client = c.CreateClient();
            await client.RemoveAsync(nodeId, cancellationToken: ct);
            Done(c, nodeId, $"{nodeId} removed");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Transfer(Func<ParseResult, CliContext> context)
    {
        var id = new Argument<string?>("id") { Description = "The voter to lead next [default: the most up-to-date one]", Arity = ArgumentArity.ZeroOrOne };
        var command = new Command("transfer-leadership", "Hand leadership to another voter and wait until it leads") { id };
        command.SetAction(async (r, ct) =>
        {
            var c = context(r);
            using var client = c.CreateClient();
            await client.TransferLeadershipAsync(r.GetValue(id), cancellationToken: ct);
            var status = await client.GetStatusAsync(cancellationToken: ct);
            var leader = status.Leader?.Id ?? "(electing)";
            Done(c, leader, $"leadership transferred; the leader is {leader}", "leader");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Snapshot(Func<ParseResult, CliContext> context)
    {
        var node = new Option<string?>("--node") { Description = "HTTP address of the node to snapshot [default: the first endpoint that answers]", HelpName = "host:port" };
        var command = new Command("snapshot", "Take a snapshot on one node now and compact its log") { node };
        command.SetAction(async (r, ct) =>
        {
            var c = context(r);
            using var client = c.CreateClient();
            var target = r.GetValue(node);
            var index = await client.SnapshotAsync(target, cancellationToken: ct);
            if (c.Output.Json)
            {
                c.Output.WriteJson(w =>
                {
                    w.WriteStartObject();
                    w.WriteNumber("index", index);
                    w.WriteEndObject();
                });
            }
            else
            {
                c.Output.Line($"snapshot taken at index {index}");
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private static void Done(CliContext c, string id, string text, string field = "id")
    {
        if (c.Output.Json)
        {
            c.Output.WriteJson(w =>
            {
                w.WriteStartObject();
                w.WriteBoolean("ok", true);
                w.WriteString(field, id);
                w.WriteEndObject();
            });
        }
        else
        {
            c.Output.Line(text);
        }
    }

    private static string Num(ulong value) => value.ToString(CultureInfo.InvariantCulture);

    /// <summary>A table cell's short form, whole milliseconds below a second: <c>12ms</c>, <c>1.5s</c>.</summary>
    private static string ShortDuration(double milliseconds) => milliseconds < 1000
        ? milliseconds.ToString("0", CultureInfo.InvariantCulture) + "ms"
        : (milliseconds / 1000).ToString("0.#", CultureInfo.InvariantCulture) + "s";
}
