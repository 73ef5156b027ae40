using System.Text;
using RaftKv.Raft;

namespace RaftKv.Storage;

/// <summary>
/// The node's incarnation (see <see cref="Member.Incarnation"/>), kept in <c>INCARNATION</c> in the data directory.
/// A new one is drawn whenever the WAL is created, so a node whose data was lost (a wiped directory, a new disk) comes
/// back as another incarnation, and its peers stop counting it as the voter it was until it rejoins.
/// </summary>
internal static class IncarnationFile
{
    public const string Name = "INCARNATION";

    /// <summary>
    /// Returns the incarnation of the state in <paramref name="dataDirectory"/>: a new one, written durably, when the
    /// WAL does not exist yet (<paramref name="walIsNew"/>) or when the directory predates incarnations.
    /// </summary>
    /// <exception cref="StorageCorruptException">The file exists but cannot be read as an incarnation.</exception>
    public static ulong Load(string dataDirectory, bool walIsNew, Action<string>? warn)
    {
        var path = Path.Combine(dataDirectory, Name);
        if (!walIsNew && File.Exists(path))
        {
            var text = File.ReadAllText(path, Encoding.ASCII).Trim();
            if (!Incarnations.TryParse(text, out var stored) || stored == 0)
                throw new StorageCorruptException(path, -1, $"\"{text}\" is not an incarnation (16 hex digits)");
            return stored;
        }
        var fresh = Incarnations.New();
        if (!walIsNew)
            warn?.Invoke($"no incarnation recorded in {dataDirectory} (written by an older RaftKv); recorded {Incarnations.Format(fresh)}");
        Write(path, fresh);
        return fresh;
    }

    private static void Write(string path, ulong incarnation)
    {
        var temp = path + ".tmp";
        using (var file = new FileStream(temp, FileMode.Create, FileAccess.Write, FileShare.None))
        {
            file.Write(Encoding.ASCII.GetBytes(Incarnations.Format(incarnation) + "\n"));
            file.Flush();
            Durable.FlushData(file.SafeFileHandle);
        }
        File.Move(temp, path, overwrite: true);
        Durable.FlushDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
    }
}
