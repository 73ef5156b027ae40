using Microsoft.Extensions.Logging;

namespace RaftKv.Node.Tests.Runtime;

public class CoreTraceLogTests
{
    [Fact]
    public async Task CoreDecisions_AreLoggedAtDebugLevel()
    {
        var log = new LogCapture();
        await using var c = new NodeCluster { LoggerFactory = log };
        await c.StartAsync("n1", bootstrap: true);
        await c.WaitForLeaderAsync();
        await NodeCluster.Eventually(
            () => Task.FromResult(log.Lines.Any(l => l.Level == LogLevel.Debug && l.Text.Contains(": BecameLeader", StringComparison.Ordinal))),
            "the core's election to be logged");
    }
}
