using System.Text.Json;
using RaftKv.Cli;

namespace RaftKv.Client.Tests;

/// <summary>The raftkv CLI, run in-process with captured output, against the shared cluster.</summary>
[Collection(SharedClusterCollection.Name)]
public sealed class CliTests(SharedCluster shared)
{
    private readonly TestCluster _cluster = shared.Cluster;

    private sealed record Run(int ExitCode, string Out, string Err);

    private async Task<Run> RaftKv(params string[] args)
    {
        var endpoints = string.Join(',', _cluster.Endpoints);
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await CliApp.RunAsync(["--endpoints", endpoints, .. args], stdout, stderr);
        return new Run(code, stdout.ToString(), stderr.ToString());
    }

    private static async Task<Run> RaftKvBare(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await CliApp.RunAsync(args, stdout, stderr);
        return new Run(code, stdout.ToString(), stderr.ToString());
    }

    [Fact]
    public async Task Set_get_delete_round_trip_with_exit_codes()
    {
        var set = await RaftKv("set", "cli-user", "batman");
        Assert.Equal(0, set.ExitCode);
        Assert.StartsWith("OK (index ", set.Out);

        var get = await RaftKv("get", "cli-user");
        Assert.Equal((0, "batman\n", ""), (get.ExitCode, get.Out, get.Err));

        var weak = await RaftKv("get", "cli-user", "--level", "none");
        Assert.Equal(0, weak.ExitCode);

        Assert.Equal(0, (await RaftKv("delete", "cli-user")).ExitCode);
        var missing = await RaftKv("get", "cli-user");
        Assert.Equal((1, "", "key not found: cli-user\n"), (missing.ExitCode, missing.Out, missing.Err));
    }

    [Fact]
    public async Task Several_pairs_and_a_file_are_each_one_atomic_write()
    {
        var pairs = await RaftKv("set", "p1=v1", "p2=v=2");
        Assert.Equal(0, pairs.ExitCode);
        Assert.Contains("2 keys set", pairs.Out);
        Assert.Equal("v1\n", (await RaftKv("get", "p1")).Out);
        Assert.Equal("v=2\n", (await RaftKv("get", "p2")).Out);

        var file = Path.GetTempFileName();
        try
        {
            await File.WriteAllTextAsync(file, """{"f1": "one", "f2": "two"}""");
            var fromFile = await RaftKv("set", "--file", file, "-o", "json");
            Assert.Equal(0, fromFile.ExitCode);
            using var doc = JsonDocument.Parse(fromFile.Out);
            Assert.True(doc.RootElement.GetProperty("index").GetUInt64() > 0);
            Assert.Equal("two\n", (await RaftKv("get", "f2")).Out);
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task Json_output_for_get_status_and_applied_index()
    {
        await RaftKv("set", "json-key", "json-value");
        var get = await RaftKv("get", "json-key", "-o", "json");
        using (var doc = JsonDocument.Parse(get.Out))
        {
            Assert.Equal("json-value", doc.RootElement.GetProperty("value").GetString());
        }

        var status = await RaftKv("status", "-o", "json");
        Assert.Equal(0, status.ExitCode);
        using (var doc = JsonDocument.Parse(status.Out))
        {
            var members = doc.RootElement.EnumerateArray().ToList();
            Assert.Equal(3, members.Count);
            Assert.Single(members, m => m.GetProperty("role").GetString() == "Leader");
            Assert.All(members, m => Assert.True(m.GetProperty("applied_index").GetUInt64() > 0));
        }

        var applied = await RaftKv("applied-index", "-o", "json");
        using (var doc = JsonDocument.Parse(applied.Out))
        {
            Assert.Equal(3, doc.RootElement.GetArrayLength());
        }
    }

    [Fact]
    public async Task Status_and_applied_index_print_aligned_tables()
    {
        var status = await RaftKv("status");
        Assert.Equal(0, status.ExitCode);
        var lines = status.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, lines.Length);
        Assert.StartsWith("ID", lines[0]);
        Assert.Contains("LAST CONTACT", lines[0]);
        Assert.Contains("Leader", lines[1]); // the leader is listed first
        // Aligned: every row's ROLE column starts where the header's does, and there is no colour in captured output.
        var roleColumn = lines[0].IndexOf("ROLE", StringComparison.Ordinal);
        Assert.All(lines.Skip(1), l => Assert.True(l[roleColumn - 1] == ' ' && l[roleColumn] != ' ', l));
        Assert.DoesNotContain("\u001b[", status.Out);

        var applied = await RaftKv("applied-index");
        var rows = applied.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(4, rows.Length);
        Assert.All(_cluster.Nodes.Keys, id => Assert.Contains(rows, r => r.StartsWith(id + " ", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task Join_and_remove_a_non_voter()
    {
        var join = await RaftKv("join", "cli-extra", "127.0.0.1:" + FreePorts.Pick(), "--http-addr", "127.0.0.1:1", "--non-voter");
        Assert.Equal((0, "cli-extra joined as a non-voter\n"), (join.ExitCode, join.Out));
        using (var client = new RaftKvClient(_cluster.Endpoints.ToArray()))
        {
            var status = await client.GetStatusAsync(_cluster.Endpoints[0]);
            Assert.Contains(status.Followers, f => f.Id == "cli-extra" && !f.Voter);
        }

        var remove = await RaftKv("remove", "cli-extra");
        Assert.Equal((0, "cli-extra removed\n"), (remove.ExitCode, remove.Out));

        var again = await RaftKv("remove", "cli-extra");
        Assert.Equal(1, again.ExitCode);
        Assert.Equal("", again.Out);
        Assert.Single(again.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries)); // one line, no stack trace
        Assert.Contains("cli-extra", again.Err);
    }

    [Theory]
    [InlineData]                                   // no command
    [InlineData("frobnicate")]                     // unknown command
    [InlineData("get")]                            // missing argument
    [InlineData("get", "k", "--level", "fuzzy")]   // bad option value
    [InlineData("set", "lonely")]                  // neither KEY VALUE nor KEY=VALUE
    [InlineData("set", "=v")]                      // empty key
    [InlineData("set", "--bogus", "k", "v")]       // unknown option
    [InlineData("get", "k", "-o", "yaml")]         // unknown output format
    public async Task Bad_usage_exits_2_with_one_line(params string[] args)
    {
        var run = await RaftKvBare(args);
        Assert.Equal(2, run.ExitCode);
        Assert.Equal("", run.Out);
        Assert.Single(run.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("raftkv: ", run.Err);
    }

    [Fact]
    public async Task An_unreachable_cluster_exits_1_with_one_line()
    {
        // The client retries refused connections until its timeout, then reports the last one. The timeout leaves room
        // for a first attempt on a starved machine, where a much shorter one can expire before any attempt is refused.
        var run = await RaftKvBare("--endpoints", "127.0.0.1:" + FreePorts.Pick(), "--timeout", "2s", "set", "k", "v");
        Assert.Equal(1, run.ExitCode);
        Assert.Single(run.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("connection refused", run.Err);
    }

    [Theory]
    [InlineData("5", "--timeout: duration \"5\" has no unit (write 5s or 5ms")]
    [InlineData("1.5", "--timeout: duration \"1.5\" has no unit (write 1.5s or 1.5ms")]
    [InlineData("5sec", "--timeout: unknown unit \"sec\"")]
    [InlineData("0", "--timeout must be positive")]
    [InlineData("0s", "--timeout must be positive")]
    [InlineData("-1s", "--timeout: invalid duration \"-1s\"")]
    [InlineData("1000h", "--timeout must be at most 596h31m23.647s")]
    public async Task Timeout_takes_raftkvd_durations_and_says_what_is_wrong(string timeout, string error)
    {
        var run = await RaftKvBare("--timeout", timeout, "get", "k");
        Assert.Equal((2, ""), (run.ExitCode, run.Out));
        Assert.StartsWith("raftkv: " + error, run.Err);
    }

    [Theory]
    [InlineData("1m30s")]
    [InlineData("1.5s")]
    [InlineData("2500ms")]
    public async Task Timeout_accepts_every_go_duration_form(string timeout)
    {
        var run = await RaftKv("--timeout", timeout, "get", "cli-timeout-missing");
        Assert.Equal((1, "key not found: cli-timeout-missing\n"), (run.ExitCode, run.Err));
    }

    [Fact]
    public async Task Help_exits_0()
    {
        var run = await RaftKvBare("--help");
        Assert.Equal(0, run.ExitCode);
        Assert.Contains("applied-index", run.Out);
    }
}
