using System.CommandLine;
using System.Text.Json;
using RaftKv.Client;

namespace RaftKv.Cli;

/// <summary><c>get</c>, <c>set</c>, <c>delete</c>.</summary>
internal static class KeyCommands
{
    public static void Add(RootCommand root, Func<ParseResult, CliContext> context)
    {
        root.Subcommands.Add(Get(context));
        root.Subcommands.Add(Set(context));
        root.Subcommands.Add(Delete(context));
    }

    private static Command Get(Func<ParseResult, CliContext> context)
    {
        var key = new Argument<string>("key") { Description = "The key" };
        var level = new Option<string>("--level", "-l")
        {
            Description = "Read consistency: none, weak, linearizable or strong",
            DefaultValueFactory = _ => "linearizable",
        };
        level.AcceptOnlyFromAmong("none", "weak", "linearizable", "strong");
        var command = new Command("get", "Read one key (prints the value)") { key, level };
        command.SetAction(async (r, ct) =>
        {
            var c = context(r);
            var k = r.GetRequiredValue(key);
            using var client = c.CreateClient();
            var value = await client.GetAsync(k, ParseLevel(r.GetRequiredValue(level)), cancellationToken: ct);
            if (value is null)
            {
                await c.Error.WriteLineAsync("key not found: " + k);
                return ExitCodes.OperationFailed;
            }
            if (c.Output.Json)
            {
                c.Output.WriteJson(w =>
                {
                    w.WriteStartObject();
                    w.WriteString("key", k);
                    w.WriteString("value", value);
                    w.WriteEndObject();
                });
            }
            else
            {
                c.Output.Line(value);
            }
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Set(Func<ParseResult, CliContext> context)
    {
        var args = new Argument<string[]>("key-value")
        {
            Description = "KEY VALUE, or one or more KEY=VALUE pairs (all set in one atomic write)",
            Arity = ArgumentArity.ZeroOrMore,
        };
        var file = new Option<string?>("--file", "-f")
        {
            Description = "A JSON object of string keys to string values to set atomically (\"-\" reads stdin)",
            HelpName = "pairs.json",
        };
        var command = new Command("set", "Set one key, or several in one atomic write") { args, file };
        command.SetAction(async (r, ct) =>
        {
            var c = context(r);
            var pairs = ReadPairs(r.GetValue(args) ?? [], r.GetValue(file));
            using var client = c.CreateClient();
            var index = await client.SetManyAsync(pairs, cancellationToken: ct);
            WriteIndexed(c, index, pairs.Count == 1 ? "OK" : $"OK: {pairs.Count} keys set");
            return ExitCodes.Success;
        });
        return command;
    }

    private static Command Delete(Func<ParseResult, CliContext> context)
    {
        var key = new Argument<string>("key") { Description = "The key (deleting a missing key succeeds)" };
        var command = new Command("delete", "Delete one key") { key };
        command.Aliases.Add("del");
        command.SetAction(async (r, ct) =>
        {
            var c = context(r);
            using var client = c.CreateClient();
            var index = await client.DeleteAsync(r.GetRequiredValue(key), cancellationToken: ct);
            WriteIndexed(c, index, "OK");
            return ExitCodes.Success;
        });
        return command;
    }

    private static void WriteIndexed(CliContext c, ulong index, string text)
    {
        if (c.Output.Json)
        {
            c.Output.WriteJson(w =>
            {
                w.WriteStartObject();
                w.WriteBoolean("ok", true);
                w.WriteNumber("index", index);
                w.WriteEndObject();
            });
        }
        else
        {
            c.Output.Line($"{text} (index {index})");
        }
    }

    private static ReadLevel ParseLevel(string text) => text switch
    {
        "none" => ReadLevel.None,
        "weak" => ReadLevel.Weak,
        "strong" => ReadLevel.Strong,
        _ => ReadLevel.Linearizable,
    };

    /// <summary>
    /// The pairs to set. All arguments KEY=VALUE (split at the first '=') → those pairs; otherwise exactly two
    /// arguments → KEY VALUE (so a value may contain '='); or <c>--file</c> alone.
    /// </summary>
    internal static List<KeyValuePair<string, string>> ReadPairs(string[] args, string? file)
    {
        if (file is not null)
        {
            if (args.Length > 0)
            {
                throw new UsageException("set takes either --file or pairs on the command line, not both");
            }
            return ReadFile(file);
        }
        if (args.Length == 0)
        {
            throw new UsageException("set needs KEY VALUE, KEY=VALUE pairs, or --file");
        }
        if (args.All(a => a.Contains('=')))
        {
            var pairs = new List<KeyValuePair<string, string>>();
            foreach (var arg in args)
            {
                var eq = arg.IndexOf('=');
                if (eq == 0)
                {
                    throw new UsageException($"\"{arg}\": the key must not be empty");
                }
                pairs.Add(new(arg[..eq], arg[(eq + 1)..]));
            }
            return pairs;
        }
        if (args.Length == 2)
        {
            if (args[0].Length == 0)
            {
                throw new UsageException("the key must not be empty");
            }
            return [new(args[0], args[1])];
        }
        throw new UsageException("set needs KEY VALUE, or every argument as KEY=VALUE");
    }

    private static List<KeyValuePair<string, string>> ReadFile(string path)
    {
        string text;
        try
        {
            text = path == "-" ? Console.In.ReadToEnd() : File.ReadAllText(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new UsageException($"--file {path}: {e.Message}");
        }
        try
        {
            using var document = JsonDocument.Parse(text);
            if (document.RootElement.ValueKind != JsonValueKind.Object)
            {
                throw new UsageException($"--file {path}: must hold a JSON object of string keys to string values");
            }
            var pairs = new List<KeyValuePair<string, string>>();
            foreach (var property in document.RootElement.EnumerateObject())
            {
                if (property.Value.ValueKind != JsonValueKind.String)
                {
                    throw new UsageException($"--file {path}: the value of \"{property.Name}\" must be a string");
                }
                pairs.Add(new(property.Name, property.Value.GetString()!));
            }
            if (pairs.Count == 0)
            {
                throw new UsageException($"--file {path}: the object is empty");
            }
            return pairs;
        }
        catch (JsonException e)
        {
            throw new UsageException($"--file {path}: malformed JSON: {e.Message}");
        }
    }
}
