using System.Text.RegularExpressions;

namespace RaftKv.Client.Tests.Readme;

/// <summary>
/// Every C# snippet in README.md compiles as written: each is kept, usings included, in a file of this folder that
/// the test project builds, and this test checks the README shows exactly what those files hold.
/// </summary>
public sealed partial class ReadmeSnippetTests
{
    // In the order the README shows them.
    private static readonly string[] SnippetFiles = ["ClientLibrarySnippet.cs", "EmbeddingSnippet.cs"];

    [Fact]
    public void Every_csharp_snippet_in_the_readme_is_one_that_compiles()
    {
        var root = RepositoryRoot();
        var readme = File.ReadAllText(Path.Combine(root, "README.md")).ReplaceLineEndings("\n");
        var shown = CsharpBlock().Matches(readme).Select(m => m.Groups[1].Value).ToList();
        var compiled = SnippetFiles.Select(f => AsShown(File.ReadAllText(Path.Combine(root, "tests", "RaftKv.Client.Tests", "Readme", f)))).ToList();
        Assert.Equal(compiled, shown);
    }

    /// <summary>The snippet as a reader sees it: the file's usings, a blank line, then the marked lines unindented.</summary>
    private static string AsShown(string source)
    {
        var lines = source.ReplaceLineEndings("\n").Split('\n');
        var usings = lines.TakeWhile(l => !l.StartsWith("//", StringComparison.Ordinal) && !l.StartsWith("namespace", StringComparison.Ordinal))
            .Where(l => l.StartsWith("using ", StringComparison.Ordinal));
        var body = lines.SkipWhile(l => l.Trim() != "// README snippet start").Skip(1)
            .TakeWhile(l => l.Trim() != "// README snippet end")
            .Select(l => l.Length >= 8 ? l[8..] : l.Trim());
        return string.Join('\n', usings) + "\n\n" + string.Join('\n', body) + "\n";
    }

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "RaftKv.slnx"))) return dir.FullName;
        }
        throw new InvalidOperationException("RaftKv.slnx not found above " + AppContext.BaseDirectory);
    }

    [GeneratedRegex("```csharp\n(.*?)```", RegexOptions.Singleline)]
    private static partial Regex CsharpBlock();
}
