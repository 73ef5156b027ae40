using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using RaftKv.Client;

namespace RaftKv.Cli;

/// <summary>
/// <c>raftkv</c> from arguments to exit code. Parsing errors exit 2 with one line; operation errors exit 1 with the
/// server's message on one line; nothing ever prints a stack trace.
/// </summary>
public static class CliApp
{
    /// <summary>Environment variable with the default endpoints (comma-separated).</summary>
    public const string EndpointsVariable = "RAFTKV_ENDPOINTS";

    /// <summary>Runs one command.</summary>
    /// <param name="args">Command-line arguments.</param>
    /// <param name="stdout">Results.</param>
    /// <param name="stderr">Errors (one line each).</param>
    /// <param name="color">Colour the tables (the caller decides: a terminal and NO_COLOR unset).</param>
    /// <param name="cancellationToken">Ctrl-C: stops the command (and the nodes <c>cluster up</c> started).</param>
    /// <returns>The exit code (see <see cref="ExitCodes"/>).</returns>
    public static async Task<int> RunAsync(string[] args, TextWriter stdout, TextWriter stderr, bool color = false, CancellationToken cancellationToken = default)
    {
        var root = BuildCommands(stdout, stderr, color);
        var result = root.Parse(args);
        // Ctrl-C is handled by the caller's token (Program.cs), so cluster up can stop its nodes before exiting.
        var invocation = new InvocationConfiguration { Output = stdout, Error = stderr, EnableDefaultExceptionHandler = false, ProcessTerminationTimeout = null };
        if (result.Action is HelpAction)
        {
            return await result.InvokeAsync(invocation, cancellationToken);
        }
        if (result.Errors.Count > 0)
        {
            // "Required command was not provided" is reported before the stray word that caused it; naming the word helps more.
            var error = result.Errors.FirstOrDefault(e => e.Message.StartsWith("Unrecognized", StringComparison.Ordinal)) ?? result.Errors[0];
            await stderr.WriteLineAsync($"raftkv: {OneLine(error.Message)} (see raftkv --help)");
            return ExitCodes.Usage;
        }
        if (result.Action is null)
        {
            await stderr.WriteLineAsync("raftkv: a command is required (see raftkv --help)");
            return ExitCodes.Usage;
        }
        try
        {
            return await result.InvokeAsync(invocation, cancellationToken);
        }
        catch (UsageException e)
        {
            await stderr.WriteLineAsync($"raftkv: {OneLine(e.Message)} (see raftkv --help)");
            return ExitCodes.Usage;
        }
        catch (RaftKvException e)
        {
            await stderr.WriteLineAsync(OneLine(e.Message));
            return ExitCodes.OperationFailed;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            await stderr.WriteLineAsync("cancelled");
            return ExitCodes.OperationFailed;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            await stderr.WriteLineAsync(OneLine(e.Message));
            return ExitCodes.OperationFailed;
        }
    }

    /// <summary>The command tree, each command's action bound to the writers.</summary>
    internal static RootCommand BuildCommands(TextWriter stdout, TextWriter stderr, bool color)
    {
        var globals = new GlobalOptions();
        var root = new RootCommand("raftkv: command-line client for a RaftKv cluster");
        globals.AddTo(root);
        Func<ParseResult, CliContext> context = r => globals.Create(r, stdout, stderr, color);
        KeyCommands.Add(root, context);
        ClusterCommands.Add(root, context);
        LocalClusterCommands.Add(root, context);
        BenchCommand.Add(root, context);
        return root;
    }

    /// <summary>The longest duration an option takes: <see cref="HttpClient.Timeout"/>'s limit.</summary>
    internal static readonly TimeSpan MaxDuration = TimeSpan.FromMilliseconds(int.MaxValue);

    /// <summary>Adds an error unless the option holds a positive duration in raftkvd's syntax (500ms, 5s, 1m30s).</summary>
    internal static void CheckDuration(OptionResult result, string name)
    {
        if (!Durations.TryParse(result.GetValueOrDefault<string?>(), out var value, out var error))
        {
            result.AddError($"{name}: {error}");
        }
        else if (value <= TimeSpan.Zero)
        {
            result.AddError($"{name} must be positive");
        }
        else if (value > MaxDuration)
        {
            result.AddError($"{name} must be at most {Durations.Format(MaxDuration)}");
        }
    }

    internal static string OneLine(string message) =>
        string.Join(' ', message.ReplaceLineEndings(" ").Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries));
}

/// <summary>Options every command takes.</summary>
internal sealed class GlobalOptions
{
    private readonly Option<string?> _endpoints = new("--endpoints", "-e")
    {
        Description = $"Cluster members' HTTP addresses, comma-separated [default: ${CliApp.EndpointsVariable}, else the cluster that cluster up runs from ./{LocalClusterCommands.DefaultDir}, else localhost:11000]",
        HelpName = "host:port[,host:port...]",
        Recursive = true,
    };

    private readonly Option<string> _output = new("--output", "-o")
    {
        Description = "Output format: table (for people) or json (for scripts)",
        DefaultValueFactory = _ => "table",
        HelpName = "table|json",
        Recursive = true,
    };

    private readonly Option<string?> _timeout = new("--timeout")
    {
        Description = "Time limit for each operation, retries included (e.g. 500ms, 5s) [default: 10s]",
        HelpName = "duration",
        Recursive = true,
    };

    public void AddTo(RootCommand root)
    {
        _output.AcceptOnlyFromAmong("table", "json");
        _timeout.Validators.Add(r => CliApp.CheckDuration(r, "--timeout"));
        root.Options.Add(_endpoints);
        root.Options.Add(_output);
        root.Options.Add(_timeout);
    }

    public CliContext Create(ParseResult result, TextWriter stdout, TextWriter stderr, bool color)
    {
        var json = result.GetValue(_output) == "json";
        var endpointText = result.GetValue(_endpoints) ?? Environment.GetEnvironmentVariable(CliApp.EndpointsVariable);
        IReadOnlyList<string> endpoints = string.IsNullOrWhiteSpace(endpointText)
            ? LocalClusterCommands.RunningDefaultClusterEndpoints() ?? ["localhost:11000"]
            : endpointText.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var timeout = TimeSpan.FromSeconds(10);
        if (result.GetValue(_timeout) is { } text)
        {
            Durations.TryParse(text, out timeout, out _);
        }
        return new CliContext(new Output(stdout, json, color && !json), stderr, endpoints, timeout)
        {
            EndpointsGiven = result.GetValue(_endpoints) is not null,
        };
    }
}

/// <summary>What one command runs with.</summary>
internal sealed class CliContext(Output output, TextWriter stderr, IReadOnlyList<string> endpoints, TimeSpan timeout)
{
    public Output Output { get; } = output;
    public TextWriter Error { get; } = stderr;
    public IReadOnlyList<string> Endpoints { get; } = endpoints;
    public TimeSpan Timeout { get; } = timeout;

    /// <summary>True when <c>--endpoints</c> was on the command line (not from the environment or the default).</summary>
    public bool EndpointsGiven { get; init; }

    /// <summary>A client for the endpoints; a malformed endpoint is a usage error.</summary>
    public RaftKvClient CreateClient()
    {
        try
        {
            return new RaftKvClient(new RaftKvClientOptions { Endpoints = Endpoints, Timeout = Timeout });
        }
        catch (ArgumentException e)
        {
            throw new UsageException("--endpoints: " + e.Message.Split(" (Parameter", 2)[0]);
        }
    }
}
