using System.Diagnostics;
using Xunit.Abstractions;

namespace RaftKv.Client.Tests;

/// <summary>The retry policy under a real failure: kill -9 the leader while one client streams writes.</summary>
public sealed class LeaderFailoverTests(ITestOutputHelper output)
{
    private const int WritesBeforeKill = 30;
    private const int WritesAfterKill = 30;

    [Fact]
    public async Task Killing_the_leader_mid_stream_loses_no_acknowledged_write_and_the_stream_continues()
    {
        using var cluster = new TestCluster();
        await cluster.StartClusterAsync(3);
        try
        {
            await RunAsync(cluster);
        }
        catch
        {
            output.WriteLine(cluster.Logs());
            throw;
        }
    }

    private async Task RunAsync(TestCluster cluster)
    {
        using var client = new RaftKvClient(new RaftKvClientOptions { Endpoints = cluster.Endpoints, Timeout = TimeSpan.FromSeconds(10) });
        var acknowledged = new List<(string Key, ulong Index)>();
        var indeterminate = new List<string>();
        var notApplied = new List<(string Key, string Error)>();
        var ackedAfterKill = 0;
        var killed = new TaskCompletionSource();
        var reachedKillPoint = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        using var stop = new CancellationTokenSource(TimeSpan.FromSeconds(40));

        // One writer, strictly sequential, as an application would be; the killer runs beside it so the kill lands
        // whenever it lands, usually with a write in flight.
        var writer = Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                var key = $"stream-{i:D4}";
                try
                {
                    var index = await client.SetAsync(key, "value-" + i, cancellationToken: stop.Token);
                    acknowledged.Add((key, index));
                    if (acknowledged.Count == WritesBeforeKill)
                    {
                        reachedKillPoint.TrySetResult();
                    }
                    if (killed.Task.IsCompleted && ++ackedAfterKill >= WritesAfterKill)
                    {
                        return;
                    }
                }
                catch (RaftKvIndeterminateException e)
                {
                    indeterminate.Add(key);
                    output.WriteLine($"indeterminate: {key}: {e.Message}");
                }
                catch (RaftKvException e)
                {
                    notApplied.Add((key, e.Message));
                    output.WriteLine($"not applied: {key}: {e.GetType().Name}: {e.Message}");
                }
            }
        });

        await reachedKillPoint.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var leader = await cluster.LeaderAsync();
        var clock = Stopwatch.StartNew();
        leader.Kill();
        killed.SetResult();
        output.WriteLine($"killed leader {leader.Name} (pid {leader.Pid}) after {acknowledged.Count} acknowledged writes");

        await writer.WaitAsync(TimeSpan.FromSeconds(45));
        output.WriteLine($"{WritesAfterKill} more writes acknowledged {clock.Elapsed.TotalSeconds:0.00}s after the kill; " +
                         $"acknowledged {acknowledged.Count}, indeterminate {indeterminate.Count}, failed and not applied {notApplied.Count}");
        Assert.True(ackedAfterKill >= WritesAfterKill, $"the stream stalled after the kill: {ackedAfterKill} writes acknowledged since");

        var newLeader = await cluster.LeaderAsync();
        Assert.NotEqual(leader, newLeader);
        Assert.Equal(newLeader.HttpAddress, client.Leader);

        // Every acknowledged write is there, on the new leader, read linearizably by a fresh client.
        using var reader = new RaftKvClient(new RaftKvClientOptions { Endpoints = [newLeader.HttpAddress] });
        foreach (var (key, index) in acknowledged)
        {
            var i = int.Parse(key["stream-".Length..], System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal("value-" + i, await reader.GetAsync(key));
        }
        // Acknowledged indexes only grow: a sequential client's writes are ordered in the log.
        Assert.True(acknowledged.Zip(acknowledged.Skip(1)).All(p => p.First.Index < p.Second.Index));

        // A write reported as failed-but-safe (never sent, refused, or not applied) must indeed be absent.
        foreach (var (key, _) in notApplied)
        {
            Assert.Null(await reader.GetAsync(key));
        }
        // Indeterminate writes may be either; just report what became of them.
        foreach (var key in indeterminate)
        {
            output.WriteLine($"{key} (indeterminate) is {(await reader.GetAsync(key) is null ? "absent" : "present")}");
        }
    }
}
