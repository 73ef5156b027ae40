using System.Text.Json;
using RaftKv.Cli;
using RaftKv.Load;

namespace RaftKv.Client.Tests;

/// <summary><c>raftkv bench</c> and its engine against the shared three-node cluster (short runs: a few hundred requests).</summary>
[Collection(SharedClusterCollection.Name)]
public sealed class BenchCliTests(SharedCluster shared)
{
    private readonly TestCluster _cluster = shared.Cluster;

    private sealed record Run(int ExitCode, string Out, string Err);

    private static async Task<Run> RaftKv(params string[] args)
    {
        using var stdout = new StringWriter();
        using var stderr = new StringWriter();
        var code = await CliApp.RunAsync(args, stdout, stderr);
        return new Run(code, stdout.ToString(), stderr.ToString());
    }

    private Task<Run> Bench(params string[] args) => RaftKv(["--endpoints", string.Join(',', _cluster.Endpoints), "bench", .. args]);

    private static void AssertOrderedLatency(JsonElement kind)
    {
        var latency = kind.GetProperty("latency_ms");
        var values = new[] { "min", "p50", "p90", "p99", "p99.9", "max" }.Select(p => latency.GetProperty(p).GetDouble()).ToArray();
        Assert.True(values[0] > 0, latency.ToString());
        for (var i = 1; i < values.Length; i++) Assert.True(values[i - 1] <= values[i], latency.ToString());
    }

    [Fact]
    public async Task Writes_by_request_count_report_throughput_ordered_percentiles_and_no_errors()
    {
        var run = await Bench("--requests", "200", "--clients", "4", "-o", "json");
        Assert.True(run.ExitCode == 0, run.Err);
        Assert.Equal("", run.Err); // no progress line when stderr is not a terminal
        using var doc = JsonDocument.Parse(run.Out);
        var root = doc.RootElement;
        Assert.Equal("raftkv", root.GetProperty("target").GetString());
        Assert.Equal(4, root.GetProperty("clients").GetInt32());
        Assert.Equal(200, root.GetProperty("requests").GetInt64());
        Assert.Equal(200, root.GetProperty("succeeded").GetInt64());
        Assert.Equal(0, root.GetProperty("errors").GetInt64());
        Assert.True(root.GetProperty("ops_per_sec").GetDouble() > 0);
        var write = root.GetProperty("write");
        Assert.Equal(200, write.GetProperty("requests").GetInt64());
        Assert.Equal(0, write.GetProperty("errors").GetInt64());
        Assert.Empty(write.GetProperty("errors_by_kind").EnumerateObject());
        Assert.True(write.GetProperty("ops_per_sec").GetDouble() > 0);
        AssertOrderedLatency(write);
        Assert.Equal(0, root.GetProperty("read").GetProperty("requests").GetInt64());
        // Sent straight to the leader.
        Assert.Equal((await _cluster.LeaderAsync()).HttpAddress, root.GetProperty("endpoint").GetString());
    }

    [Fact]
    public async Task A_mixed_run_reports_both_kinds()
    {
        var run = await Bench("--requests", "200", "--clients", "4", "--mix", "50:50", "--keys", "20", "--level", "linearizable", "-o", "json");
        Assert.True(run.ExitCode == 0, run.Err);
        using var doc = JsonDocument.Parse(run.Out);
        var root = doc.RootElement;
        Assert.Equal(200, root.GetProperty("requests").GetInt64());
        Assert.Equal(0, root.GetProperty("errors").GetInt64());
        var write = root.GetProperty("write");
        var read = root.GetProperty("read");
        Assert.True(write.GetProperty("requests").GetInt64() > 0);
        Assert.True(read.GetProperty("requests").GetInt64() > 0);
        Assert.Equal(200, write.GetProperty("requests").GetInt64() + read.GetProperty("requests").GetInt64());
        Assert.True(read.GetProperty("ops_per_sec").GetDouble() > 0);
        AssertOrderedLatency(write);
        AssertOrderedLatency(read);
    }

    [Fact]
    public async Task The_table_has_a_row_per_kind_and_a_total()
    {
        var run = await Bench("--requests", "60", "--clients", "2", "--mix", "50:50", "--level", "none");
        Assert.True(run.ExitCode == 0, run.Err);
        var lines = run.Out.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("raftkv at ", lines[0]);
        Assert.Contains("2 clients", lines[0]);
        Assert.StartsWith("KIND", lines[1]);
        Assert.Contains("P99.9 MS", lines[1]);
        Assert.StartsWith("write ", lines[2]);
        Assert.StartsWith("read ", lines[3]);
        Assert.StartsWith("total ", lines[4]);
        Assert.Contains(" 60 ", lines[4]);
    }

    [Fact]
    public async Task The_engine_runs_from_code_and_distinct_writes_create_new_keys()
    {
        var target = new RaftKvLoadTarget(_cluster.Endpoints);
        await target.PrepareAsync(TimeSpan.FromSeconds(10));
        var prefix = "engine-" + Guid.NewGuid().ToString("N")[..8] + "-";
        var report = await LoadRunner.RunAsync(target, new LoadOptions { Clients = 3, Requests = 30, Distinct = true, KeyPrefix = prefix, ValueSize = 10 });
        Assert.Equal((30L, 30L, 0L), (report.Requests, report.Succeeded, report.ErrorCount));
        Assert.Equal(30, report.Writes.Latency.Count);
        using var client = new RaftKvClient(_cluster.Endpoints.ToArray());
        Assert.Equal(10, (await client.GetAsync(prefix + "0"))?.Length);
        Assert.NotNull(await client.GetAsync(prefix + "29"));
        Assert.Null(await client.GetAsync(prefix + "30"));
    }

    [Theory]
    [InlineData("--mix", "60:30")]
    [InlineData("--mix", "write")]
    [InlineData("--clients", "0")]
    [InlineData("--requests", "0")]
    [InlineData("--duration", "soon")]
    [InlineData("--duration", "10")]
    [InlineData("--duration", "1s", "--requests", "5")]
    [InlineData("--value-size", "-1")]
    [InlineData("--keys", "0")]
    [InlineData("--level", "fuzzy")]
    [InlineData("--target", "redis")]
    [InlineData("--bogus")]
    public async Task Bad_options_exit_2_with_one_line(params string[] args)
    {
        var run = await RaftKv(["bench", .. args]);
        Assert.Equal(2, run.ExitCode);
        Assert.Equal("", run.Out);
        Assert.Single(run.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("raftkv: ", run.Err);
    }

    [Fact]
    public async Task A_malformed_endpoint_exits_2_and_an_unreachable_cluster_exits_1()
    {
        var bad = await RaftKv("--endpoints", "no-port-here", "bench", "--requests", "1");
        Assert.Equal(2, bad.ExitCode);

        var run = await RaftKv("--endpoints", "127.0.0.1:" + FreePorts.Pick(), "--timeout", "500ms", "bench", "--requests", "1");
        Assert.Equal(1, run.ExitCode);
        Assert.Equal("", run.Out);
        Assert.Single(run.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains("leader", run.Err);
    }
}
