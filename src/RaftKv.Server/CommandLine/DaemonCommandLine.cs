using System.CommandLine;
using System.CommandLine.Help;
using System.CommandLine.Parsing;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.Logging;
using RaftKv.Node;
using RaftKv.Node.Transport;

namespace RaftKv.Server.CommandLine;

/// <summary>What parsing the command line came to: options to run with, a help/version text to print, or a usage error.</summary>
public sealed record CommandLineOutcome
{
    /// <summary>Options to run with (null when help was asked for or parsing failed).</summary>
    public DaemonOptions? Options { get; init; }

    /// <summary>One-line usage error (null when parsing succeeded).</summary>
    public string? Error { get; init; }

    /// <summary>The parse result to invoke when it asked for --help or --version.</summary>
    public ParseResult? InformationRequest { get; init; }
}

/// <summary>
/// <c>raftkvd [options] &lt;data-dir&gt;</c>. Flags keep hraftd's single-dash spellings (<c>-id -haddr -raddr -join -inmem</c>),
/// goraft's logging switches (<c>-v -debug -trace</c>) and the bingoohuang fork's (<c>--rjoin --haddr --raddr</c>),
/// plus long forms for everything.
/// </summary>
public sealed class DaemonCommandLine
{
    private readonly Argument<string?> _dataDir = new("data-dir")
    {
        Description = "Directory for the log and snapshots (created if missing) [default: raftkvd-<HTTP port> in the current directory]",
        Arity = ArgumentArity.ZeroOrOne,
    };

    private readonly Option<string?> _id = new("--id", "-id")
    {
        Description = "Node ID [default: the raft address]",
        HelpName = "id",
    };

    private readonly Option<string> _httpAddr = new("--http-addr", "-haddr", "--haddr")
    {
        Description = "HTTP API bind address, host:port",
        DefaultValueFactory = _ => "localhost:11000",
        HelpName = "host:port",
    };

    private readonly Option<int?> _port = new("-p", "--port")
    {
        Description = "goraft/raftd's spelling: HTTP on localhost:<port> (instead of --http-addr)",
        HelpName = "port",
    };

    private readonly Option<string?> _httpAdvAddr = new("--http-adv-addr")
    {
        Description = "HTTP address other nodes use to reach this one [default: the bind address]",
        HelpName = "host:port",
    };

    private readonly Option<string?> _raftAddr = new("--raft-addr", "-raddr", "--raddr")
    {
        Description = "Raft bind address, host:port [default: the HTTP address's host, port + 1000: localhost:12000]",
        HelpName = "host:port",
    };

    private readonly Option<string?> _raftAdvAddr = new("--raft-adv-addr")
    {
        Description = "Raft address other nodes use to reach this one [default: the bind address]",
        HelpName = "host:port",
    };

    private readonly Option<string[]> _join = new("--join", "-join", "--rjoin", "-rjoin")
    {
        Description = "HTTP address(es) of cluster members to join, comma-separated (\":11000\" means localhost:11000); ignored once this node has state",
        HelpName = "addr[,addr...]",
        AllowMultipleArgumentsPerToken = false,
    };

    private readonly Option<bool> _inmem = new("--inmem", "-inmem")
    {
        Description = "Keep the raft log in memory: fast, NOT durable (lost on restart)",
    };

    private readonly Option<string> _heartbeat = DurationOption("--heartbeat-timeout", "100ms", "Leader heartbeat interval");
    private readonly Option<string> _election = DurationOption("--election-timeout", "1s", "Base election timeout (a follower that hears no leader for [T, 2T) starts an election)");
    private readonly Option<string> _snapshotInterval = DurationOption("--snapshot-interval", "2m", "How often to check whether a snapshot is due", NodeOptions.MaxSnapshotInterval);
    private readonly Option<string> _requestTimeout = DurationOption("--request-timeout", "5s", "Longest a client request may take, waiting for a leader included");

    private readonly Option<int> _snapshotThreshold = new("--snapshot-threshold")
    {
        Description = "Applied entries since the last snapshot that trigger a new one (or half the keys held, if more)",
        DefaultValueFactory = _ => 8192,
        HelpName = "entries",
    };

    private readonly Option<int> _trailingLogs = new("--trailing-logs")
    {
        Description = "Entries kept in the log behind a snapshot",
        DefaultValueFactory = _ => 10240,
        HelpName = "entries",
    };

    private readonly Option<string> _maxBody = new("--max-body")
    {
        Description = "Largest request body accepted (e.g. 1048576, 1MiB, 512KiB)",
        DefaultValueFactory = _ => "1MiB",
        HelpName = "size",
    };

    private readonly Option<int> _maxQueuedRequests = new("--max-queued-requests")
    {
        Description = "Most requests that may wait for the raft loop; beyond it requests are refused as busy (503)",
        DefaultValueFactory = _ => NodeOptions.DefaultMaxQueuedRequests,
        HelpName = "requests",
    };

    private readonly Option<string> _maxQueuedBytes = new("--max-queued-bytes")
    {
        Description = "Most bytes of writes that may wait for the raft loop (e.g. 256MiB); beyond it writes are refused as busy (503)",
        DefaultValueFactory = _ => "256MiB",
        HelpName = "size",
    };

    private readonly Option<bool> _verbose = new("-v", "--verbose") { Description = "Verbose logging (Information)" };
    private readonly Option<bool> _debug = new("-debug", "--debug") { Description = "Debug logging" };
    private readonly Option<bool> _trace = new("-trace", "--trace") { Description = "Trace logging (everything)" };

    /// <summary>The root command, for help text and tests.</summary>
    public RootCommand Command { get; }

    /// <summary>Builds the command and its validators.</summary>
    public DaemonCommandLine()
    {
        Command = new RootCommand("raftkvd: a Raft-replicated key-value store server (hraftd-compatible HTTP API)")
        {
            _dataDir, _id, _httpAddr, _port, _httpAdvAddr, _raftAddr, _raftAdvAddr, _join, _inmem,
            _heartbeat, _election, _snapshotThreshold, _trailingLogs, _snapshotInterval, _requestTimeout, _maxBody, _maxQueuedRequests, _maxQueuedBytes,
            _verbose, _debug, _trace,
        };

        foreach (var option in new Option[] { _httpAddr, _raftAddr })
        {
            option.Validators.Add(r => ValidateAddress(r, r.GetValueOrDefault<string?>()));
        }
        _port.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int?>() is not (>= 1 and <= 65535))
            {
                r.AddError("-p must be a port between 1 and 65535");
            }
        });
        foreach (var option in new[] { _httpAdvAddr, _raftAdvAddr })
        {
            option.Validators.Add(r =>
            {
                if (r.GetValueOrDefault<string?>() is { } address && NetworkAddress.ReachableProblem(address) is { } problem)
                {
                    r.AddError($"{r.Option.Name}: {problem}");
                }
            });
        }
        _id.Validators.Add(r =>
        {
            if (NodeIds.Problem(r.GetValueOrDefault<string?>()) is { } problem)
            {
                r.AddError("--id: " + problem);
            }
        });
        _snapshotThreshold.Validators.Add(r => RequirePositive(r, "--snapshot-threshold"));
        ShowEverySpelling();
        _trailingLogs.Validators.Add(r =>
        {
            if (TryGetInt(r) < 0)
            {
                r.AddError("--trailing-logs must not be negative");
            }
        });
        _maxBody.Validators.Add(r =>
        {
            if (!ByteSizes.TryParse(r.GetValueOrDefault<string>(), out var bytes, out var error))
            {
                r.AddError($"--max-body: {error}");
            }
            else if (bytes <= 0)
            {
                r.AddError("--max-body must be positive");
            }
            else if (bytes > ServerOptions.LargestMaxBodyBytes)
            {
                r.AddError(
                    $"--max-body {bytes} is more than the cluster can replicate: a write must fit one {TransportOptions.Default.MaxFrameSize}-byte raft message with its key, so the largest --max-body is {ServerOptions.LargestMaxBodyBytes} bytes");
            }
        });
        _maxQueuedBytes.Validators.Add(r =>
        {
            if (!ByteSizes.TryParse(r.GetValueOrDefault<string>(), out _, out var error))
            {
                r.AddError($"--max-queued-bytes: {error}");
            }
        });
        _join.Validators.Add(r =>
        {
            foreach (var address in SplitJoin(r.GetValueOrDefault<string[]>()))
            {
                if (!NetworkAddress.IsDialable(address))
                {
                    r.AddError($"--join: \"{address}\" is not a host:port address");
                }
            }
        });
    }

    /// <summary>Parses the arguments: options, a help/version request, or a one-line error.</summary>
    public CommandLineOutcome Parse(IReadOnlyList<string> args)
    {
        // Bundling would read "-id" as "-i -d" if it were not a known alias; off, so Go-style single-dash flags stay whole.
        var result = Command.Parse(args, new ParserConfiguration { EnablePosixBundling = false });
        if (result.Action is HelpAction)
        {
            return new CommandLineOutcome { InformationRequest = result };
        }
        if (result.Errors.Count > 0)
        {
            // An unknown "--flag" parses as a stray argument, and the first error then blames whatever follows it;
            // naming the flag is what helps.
            var unknown = result.Tokens.FirstOrDefault(t => t.Type == TokenType.Argument && t.Value.Length > 1 && t.Value[0] == '-'
                && !char.IsAsciiDigit(t.Value[1]));
            return new CommandLineOutcome
            {
                Error = unknown is not null ? $"unknown flag {unknown.Value}" : OneLine(result.Errors[0].Message),
            };
        }
        if (result.Action is not null)
        {
            // The root command has no action of its own, so any action left is --version's.
            return new CommandLineOutcome { InformationRequest = result };
        }

        if (result.GetValue(_dataDir) is { Length: > 1 } dataDir && dataDir[0] == '-')
        {
            // With the directory optional, a mistyped flag would otherwise be taken for it (and "-inmen" run durable).
            return new CommandLineOutcome { Error = $"unknown flag {dataDir} (a data directory whose name starts with '-' can be given as ./{dataDir})" };
        }
        var httpAddr = result.GetRequiredValue(_httpAddr);
        if (result.GetValue(_port) is { } port)
        {
            if (result.GetResult(_httpAddr) is { Implicit: false })
            {
                return new CommandLineOutcome { Error = "-p and --http-addr both set the HTTP address: give one" };
            }
            httpAddr = $"localhost:{port.ToString(CultureInfo.InvariantCulture)}";
        }
        var raftAddr = result.GetValue(_raftAddr) ?? DefaultRaftAddress(httpAddr);
        if (raftAddr is null)
        {
            return new CommandLineOutcome { Error = $"no default raft address for HTTP address {httpAddr} (its port + 1000 is past 65535): give --raft-addr" };
        }
        var httpPort = NetworkAddress.Parse(httpAddr).Port;
        var raftAdv = result.GetValue(_raftAdvAddr) ?? AdvertiseDefault(raftAddr);
        Durations.TryParse(result.GetRequiredValue(_heartbeat), out var heartbeat, out _);
        Durations.TryParse(result.GetRequiredValue(_election), out var election, out _);
        Durations.TryParse(result.GetRequiredValue(_snapshotInterval), out var snapshotInterval, out _);
        Durations.TryParse(result.GetRequiredValue(_requestTimeout), out var requestTimeout, out _);
        ByteSizes.TryParse(result.GetRequiredValue(_maxBody), out var maxBody, out _);
        ByteSizes.TryParse(result.GetRequiredValue(_maxQueuedBytes), out var maxQueuedBytes, out _);

        var options = new DaemonOptions
        {
            DataDirectory = result.GetValue(_dataDir) ?? "raftkvd-" + httpPort.ToString(CultureInfo.InvariantCulture),
            Id = result.GetValue(_id) ?? raftAdv,
            HttpAddress = httpAddr,
            HttpAdvertiseAddress = result.GetValue(_httpAdvAddr) ?? HttpAdvertiseDefault(httpAddr, raftAdv),
            RaftAddress = raftAddr,
            RaftAdvertiseAddress = raftAdv,
            Join = SplitJoin(result.GetValue(_join)),
            InMemory = result.GetValue(_inmem),
            HeartbeatTimeout = heartbeat,
            ElectionTimeout = election,
            SnapshotThreshold = result.GetValue(_snapshotThreshold),
            TrailingLogs = result.GetValue(_trailingLogs),
            SnapshotInterval = snapshotInterval,
            RequestTimeout = requestTimeout,
            MaxBodyBytes = maxBody,
            MaxQueuedRequests = result.GetValue(_maxQueuedRequests),
            MaxQueuedBytes = maxQueuedBytes,
            LogLevel = result.GetValue(_trace) ? LogLevel.Trace
                : result.GetValue(_debug) ? LogLevel.Debug
                : result.GetValue(_verbose) ? LogLevel.Information
                : LogLevel.Warning,
        };
        // The node's own rules (the ones an embedded node meets in KvNode.StartAsync), told in flags.
        if (options.ToNodeOptions(bootstrap: false).FindProblem(FlagOf) is { } problem)
        {
            return new CommandLineOutcome { Error = problem.Message };
        }
        if (Overlap(httpAddr, raftAddr))
        {
            return new CommandLineOutcome { Error = $"--http-addr {httpAddr} and --raft-addr {raftAddr} use the same port: give them different ones" };
        }
        if (LocalOnlyRaftWithRemoteJoin(options, result.GetValue(_raftAddr) is null) is { } remoteJoin)
        {
            return new CommandLineOutcome { Error = remoteJoin };
        }
        return new CommandLineOutcome { Options = options };
    }

    /// <summary>
    /// The raft address when none is given: port 1000 above the HTTP port, hraftd's pair (11000/12000) carried over to
    /// any HTTP port, so the fork's and raftd's walkthroughs, which name only the HTTP side, give each node its own raft
    /// port. The host is the HTTP address's, except that an HTTP bind on every interface (":11000", "0.0.0.0:11000")
    /// keeps raft on localhost, as the old fixed default did: the transport has no authentication, so it is exposed
    /// only when asked for, and the default id (the raft address) of such a node stays what it was. Null when the
    /// port would be past 65535.
    /// </summary>
    internal static string? DefaultRaftAddress(string httpAddress)
    {
        if (!NetworkAddress.TryParse(httpAddress, out NetworkAddress http) || http.Port + 1000 > IPEndPoint.MaxPort)
        {
            return null;
        }
        var raftPort = (http.Port + 1000).ToString(CultureInfo.InvariantCulture);
        return http.IsAnyInterface ? "localhost:" + raftPort : http.WithPort(http.Port + 1000).ToString();
    }

    /// <summary>
    /// A node whose raft address only this machine can reach, told to join a node on another host: the leader there
    /// would add it under an address that names the leader's own machine, and every host running the same command
    /// would claim the same raft address and id (the fork's multi-host <c>--rjoin host1:11000 --haddr :11000</c>).
    /// Refused before anything starts, saying which flags give an address other hosts can dial.
    /// </summary>
    private static string? LocalOnlyRaftWithRemoteJoin(DaemonOptions options, bool raftDefaulted)
    {
        if (!HostPort.IsLocalOnly(options.RaftAdvertiseAddress))
        {
            return null;
        }
        var remote = options.JoinTargetsExcludingSelf().FirstOrDefault(t => !HostPort.IsLocalOnly(t));
        if (remote is null)
        {
            return null;
        }
        var raftPort = NetworkAddress.Parse(options.RaftAddress).Port;
        var why = raftDefaulted && NetworkAddress.Parse(options.HttpAddress).IsAnyInterface
            ? " (with the HTTP address on every interface, raft stays on localhost unless asked: its transport has no authentication)"
            : "";
        return $"-join {remote} is on another host, but this node's raft address {options.RaftAdvertiseAddress} can only be reached from this machine{why}; " +
            $"give --raft-addr <this host's IP>:{raftPort} (or --raft-addr 0.0.0.0:{raftPort} --raft-adv-addr <this host's IP or name>:{raftPort}), " +
            $"on a network you trust; the HTTP address {options.HttpAddress} then advertises the same host (or give --http-adv-addr)";
    }

    /// <summary>
    /// The HTTP address to advertise when none is given. An HTTP bind on every interface, on a node whose raft address
    /// other hosts can reach, advertises that raft host with the HTTP port: the wildcard covers it, and other nodes
    /// forward requests there (localhost would send them to their own machine). Otherwise as <see cref="AdvertiseDefault"/>.
    /// </summary>
    internal static string HttpAdvertiseDefault(string httpBind, string raftAdvertise)
    {
        if (NetworkAddress.TryParse(httpBind, out NetworkAddress bind) && bind.IsAnyInterface
            && NetworkAddress.TryParse(raftAdvertise, out NetworkAddress raft) && !raft.IsLoopback && !raft.IsAnyInterface)
        {
            return raft.WithPort(bind.Port).ToString();
        }
        return AdvertiseDefault(httpBind);
    }

    /// <summary>
    /// The address to advertise when none is given: the bind address, with an empty host read as localhost
    /// (":11000" is hraftd's shorthand). A wildcard bind (0.0.0.0) advertises the machine name, the best guess others can resolve.
    /// </summary>
    internal static string AdvertiseDefault(string bind)
    {
        if (!NetworkAddress.TryParse(bind, out NetworkAddress address))
        {
            return bind;
        }
        return address switch
        {
            { Host: "" } => $"localhost:{address.Port}",
            { IsAnyInterface: true } => $"{Environment.MachineName}:{address.Port}",
            _ => bind,
        };
    }

    /// <summary>
    /// The default help shows one of "-id" and "--id" (the shorter); the others are added to the description so users
    /// of hraftd, raftd and the fork each find the spelling they know.
    /// </summary>
    private void ShowEverySpelling()
    {
        foreach (var option in Command.Options)
        {
            var hidden = new[] { option.Name }.Concat(option.Aliases)
                .GroupBy(n => n.TrimStart('-'))
                .Where(g => g.Count() > 1)
                .SelectMany(g => g.OrderBy(n => n.Length).Skip(1))
                .ToList();
            if (hidden.Count > 0)
            {
                option.Description += $" (also {string.Join(", ", hidden)})";
            }
        }
    }

    private static List<string> SplitJoin(string[]? values) =>
        (values ?? [])
            .SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
            .Select(HostPort.Normalize)
            .Distinct(StringComparer.OrdinalIgnoreCase)
            .ToList();

    /// <summary>
    /// A duration flag, positive and at most <paramref name="max"/> (<see cref="NodeOptions.MaxTimeout"/>, 24h, unless said): the node's timers and
    /// cancellation deadlines cannot take more than about 49 days, and a request timeout is also multiplied
    /// (a snapshot request may take six of them).
    /// </summary>
    private static Option<string> DurationOption(string name, string defaultValue, string description, TimeSpan? max = null)
    {
        var limit = max ?? NodeOptions.MaxTimeout;
        var option = new Option<string>(name)
        {
            Description = description + " (e.g. 100ms, 1s, 2m)",
            DefaultValueFactory = _ => defaultValue,
            HelpName = "duration",
        };
        option.Validators.Add(r =>
        {
            if (!Durations.TryParse(r.GetValueOrDefault<string>(), out var value, out var error))
            {
                r.AddError($"{name}: {error}");
            }
            else if (value <= TimeSpan.Zero)
            {
                r.AddError($"{name} must be positive");
            }
            else if (value > limit)
            {
                r.AddError($"{name} must be at most {Durations.Format(limit)}");
            }
        });
        return option;
    }

    /// <summary>The flag that sets a <see cref="NodeOptions"/> property, to name it in that option's problems.</summary>
    private static string FlagOf(string nodeOption) => nodeOption switch
    {
        nameof(NodeOptions.Id) => "--id",
        nameof(NodeOptions.DataDirectory) => "the data directory",
        nameof(NodeOptions.RaftBindAddress) => "--raft-addr",
        nameof(NodeOptions.RaftAdvertiseAddress) => "--raft-adv-addr",
        nameof(NodeOptions.HttpAdvertiseAddress) => "--http-adv-addr",
        nameof(NodeOptions.HeartbeatTimeout) => "--heartbeat-timeout",
        nameof(NodeOptions.ElectionTimeout) => "--election-timeout",
        nameof(NodeOptions.RequestTimeout) => "--request-timeout",
        nameof(NodeOptions.SnapshotInterval) => "--snapshot-interval",
        nameof(NodeOptions.SnapshotThreshold) => "--snapshot-threshold",
        nameof(NodeOptions.TrailingLogs) => "--trailing-logs",
        nameof(NodeOptions.MaxQueuedRequests) => "--max-queued-requests",
        nameof(NodeOptions.MaxQueuedBytes) => "--max-queued-bytes",
        _ => nodeOption,
    };

    private static void ValidateAddress(OptionResult result, string? address)
    {
        if (address is null) return;
        if (NetworkAddress.Problem(address) is { } problem)
        {
            result.AddError($"{result.Option.Name}: {problem}");
        }
        else if (NetworkAddress.Parse(address).Port == 0)
        {
            // The addresses go into the cluster configuration, where other nodes and forwarded requests look them up.
            result.AddError($"{result.Option.Name}: \"{address}\" needs a fixed port (0 would pick one other nodes cannot know)");
        }
    }

    /// <summary>True when binding both addresses would clash: the same port, on the same host or with either on every interface.</summary>
    private static bool Overlap(string a, string b)
    {
        if (!NetworkAddress.TryParse(a, out NetworkAddress first) || !NetworkAddress.TryParse(b, out NetworkAddress second) || first.Port != second.Port || first.Port == 0)
        {
            return false;
        }
        return first.IsSameEndpoint(second) || first.IsAnyInterface || second.IsAnyInterface;
    }

    private static void RequirePositive(OptionResult result, string name)
    {
        if (TryGetInt(result) <= 0)
        {
            result.AddError($"{name} must be positive");
        }
    }

    /// <summary>The option's int, or null when it did not parse (that error is already reported; validators still run).</summary>
    private static int? TryGetInt(OptionResult result)
    {
        try
        {
            return result.GetValueOrDefault<int>();
        }
        catch (InvalidOperationException)
        {
            return null;
        }
    }

    private static string OneLine(string message) => message.ReplaceLineEndings(" ").Trim();
}
