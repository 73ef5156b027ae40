namespace RaftKv.Raft.Bench;

internal static class Args
{
    public static long Get(string[] args, string name, long fallback)
    {
        var i = Array.IndexOf(args, name);
        return i >= 0 && i + 1 < args.Length && long.TryParse(args[i + 1], out var v) ? v : fallback;
    }
}
