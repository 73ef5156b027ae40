using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using RaftKv.Raft.Tests.Harness;

namespace RaftKv.Raft.Tests;

/// <summary>
/// Golden traces: each file in testdata/ is a scripted scenario followed, command by command, by the trace the cores
/// produce (<see cref="RaftOptions.Trace"/>) and any status asked for. The test replays the script and compares the
/// whole text with the file, so a change in what the cores decide, or when, shows up as a readable diff.
/// </summary>
/// <remarks>
/// After an intended change, regenerate the files and review the diff:
/// <c>RAFTKV_REWRITE_GOLDEN=1 dotnet test tests/RaftKv.Raft.Tests --filter FullyQualifiedName~GoldenTrace</c>
/// (this rewrites tests/RaftKv.Raft.Tests/testdata/*.txt in the source tree, and the test passes).
/// <para>
/// File format: lines starting with <c>&gt; </c> are commands, lines starting with <c>#</c> comments, and blank lines
/// are kept; every other line is output and is regenerated. Each command runs, then the cluster settles (every Ready
/// handled, every message delivered until nothing moves). Commands:
/// <c>cluster N [prevote=false] [checkquorum=false] [max-size=BYTES]</c> (voters n1..nN, bootstrapped at term 1),
/// <c>campaign ID</c>, <c>tick [TIMES]</c> (every live node, settling after each), <c>propose ID TEXT</c>,
/// <c>transfer LEADER TARGET</c>, <c>partition IDS IDS</c> (comma-separated groups that cannot reach each other),
/// <c>isolate ID</c>, <c>heal</c>, <c>crash ID</c>, <c>restart ID</c>,
/// <c>drop [from=ID] [to=ID] [type=MessageType] [index=INDEX]</c> (lose matching messages until <c>undrop</c>),
/// <c>undrop</c>, <c>status</c> (each node's role, term, commit index and log as index/term).
/// </para>
/// </remarks>
public class GoldenTraceTests
{
    public static TheoryData<string> Scenarios() => new(
        Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "testdata"), "*.txt").Select(Path.GetFileName).Order(StringComparer.Ordinal)!);

    [Theory]
    [MemberData(nameof(Scenarios))]
    public void TraceMatchesGoldenFile(string file)
    {
        if (Environment.GetEnvironmentVariable("RAFTKV_REWRITE_GOLDEN") == "1")
        {
            // The source file, not the copy in the output directory: its script may have been edited since the build.
            var source = Path.Combine(SourceDirectory(), "testdata", file);
            File.WriteAllText(source, Run(File.ReadAllText(source).ReplaceLineEndings("\n")));
            return;
        }
        var expected = File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "testdata", file)).ReplaceLineEndings("\n");
        Assert.Equal(expected, Run(expected));
    }

    private static string SourceDirectory([CallerFilePath] string path = "") => Path.GetDirectoryName(path)!;

    /// <summary>Replays the commands of <paramref name="script"/> and returns the script with the output they produce.</summary>
    internal static string Run(string script)
    {
        var output = new StringBuilder();
        TestCluster? cluster = null;
        var drops = new List<Func<Message, bool>>();
        foreach (var line in script.Split('\n'))
        {
            var isCommand = line.StartsWith("> ", StringComparison.Ordinal);
            if (!isCommand && line.Length > 0 && !line.StartsWith('#')) continue; // output of the last run: regenerated
            output.Append(line).Append('\n');
            if (!isCommand) continue;
            var args = line[2..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (args[0] == "cluster")
            {
                cluster = NewCluster(args, output);
                cluster.Drop = m => drops.Exists(d => d(m));
                continue;
            }
            var c = cluster ?? throw new InvalidOperationException($"'{line}': no cluster yet");
            switch (args[0])
            {
                case "campaign": c[args[1]].Campaign(); break;
                case "tick": c.Tick(args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 1); break;
                case "propose": Report(c.Propose(args[1], args[2]), output); break;
                case "transfer": Report(c[args[1]].TransferLeadership(args[2]), output); break;
                case "partition": Partition(c, args[1].Split(','), args[2].Split(',')); break;
                case "isolate": c.Isolate(args[1]); break;
                case "heal": c.Heal(); break;
                case "crash": c.Crash(args[1]); break;
                case "restart": c.Restart(args[1]); break;
                case "drop": drops.Add(DropRule(args[1..])); break;
                case "undrop": drops.Clear(); break;
                case "status": Status(c, output); break;
                default: throw new InvalidOperationException($"unknown command '{line}'");
            }
            c.Settle();
        }
        // Split leaves an empty last piece for the final newline, which the loop above wrote back.
        return output.ToString()[..^1];
    }

    private static TestCluster NewCluster(string[] args, StringBuilder output)
    {
        var voters = int.Parse(args[1], CultureInfo.InvariantCulture);
        bool preVote = true, checkQuorum = true;
        long maxSize = 1 << 20;
        foreach (var option in args[2..])
        {
            var (name, value) = (option[..option.IndexOf('=')], option[(option.IndexOf('=') + 1)..]);
            switch (name)
            {
                case "prevote": preVote = bool.Parse(value); break;
                case "checkquorum": checkQuorum = bool.Parse(value); break;
                case "max-size": maxSize = long.Parse(value, CultureInfo.InvariantCulture); break;
                default: throw new InvalidOperationException($"unknown cluster option '{option}'");
            }
        }
        return new TestCluster(voters, options: id => new RaftOptions
        {
            Id = id, PreVote = preVote, CheckQuorum = checkQuorum, MaxSizePerMessage = maxSize, Random = TestCluster.SeedFor(id),
            Trace = e => output.Append(e.ToString()).Append('\n'),
        });
    }

    private static void Report(ProposeResult r, StringBuilder output)
    {
        if (!r.Accepted) output.Append(CultureInfo.InvariantCulture, $"refused: {r.Refusal} ({r.Message})\n");
        else if (r.Index > 0) output.Append(CultureInfo.InvariantCulture, $"appended at index {r.Index}, term {r.Term}\n");
    }

    private static void Partition(TestCluster c, string[] left, string[] right)
    {
        foreach (var a in left)
        {
            foreach (var b in right)
            {
                c.Cut.Add((a, b));
                c.Cut.Add((b, a));
            }
        }
    }

    private static Func<Message, bool> DropRule(string[] filters)
    {
        string? from = null, to = null;
        MessageType? type = null;
        ulong? index = null;
        foreach (var f in filters)
        {
            var value = f[(f.IndexOf('=') + 1)..];
            switch (f[..f.IndexOf('=')])
            {
                case "from": from = value; break;
                case "to": to = value; break;
                case "type": type = Enum.Parse<MessageType>(value); break;
                case "index": index = ulong.Parse(value, CultureInfo.InvariantCulture); break;
                default: throw new InvalidOperationException($"unknown drop filter '{f}'");
            }
        }
        return m => (from is null || m.From == from) && (to is null || m.To == to) && (type is null || m.Type == type)
            && (index is null || m.Index == index);
    }

    private static void Status(TestCluster c, StringBuilder output)
    {
        foreach (var (id, n) in c.Nodes)
        {
            if (n.Down)
            {
                output.Append(CultureInfo.InvariantCulture, $"{id}: down\n");
                continue;
            }
            var core = n.Core;
            var log = new StringBuilder();
            for (var i = core.FirstIndex; i <= core.LastIndex; i++) log.Append(CultureInfo.InvariantCulture, $" {i}/{core.TermAt(i)}");
            output.Append(CultureInfo.InvariantCulture, $"{id}: {core.Role} term {core.Term} commit {core.CommitIndex} log{log}\n");
        }
    }
}
