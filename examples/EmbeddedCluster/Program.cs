using RaftKv.Examples.EmbeddedCluster;

// dotnet run --project examples/EmbeddedCluster [data-dir]
// Run it again and the same cluster starts again from its data (same ports); remove the directory for a new one.
var root = args.Length > 0 ? args[0] : Path.Combine(Path.GetTempPath(), "raftkv-embedded-example");
await EmbeddedClusterExample.RunAsync(root, Console.Out);
Console.WriteLine($"data kept in {root}");
