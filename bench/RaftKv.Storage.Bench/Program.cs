using System.Diagnostics;
using System.Globalization;
using RaftKv.Raft;
using RaftKv.Storage;
using RaftKv.Storage.Wal;

// Storage benchmark: WAL append + fsync throughput against a raw write + fdatasync baseline, and recovery time.
//   dotnet run -c Release --project bench/RaftKv.Storage.Bench -- [--dir D] [--seconds N] [--recovery-mb N] [--entry-bytes N]

var dir = Path.Combine(Path.GetTempPath(), "raftkv-storage-bench");
var seconds = 3.0;
var recoveryMb = 1024;
var entryBytes = 100;
for (var i = 0; i < args.Length; i++)
{
    string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
    switch (args[i])
    {
        case "--dir": dir = Next(); break;
        case "--seconds": seconds = double.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--recovery-mb": recoveryMb = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "--entry-bytes": entryBytes = int.Parse(Next(), CultureInfo.InvariantCulture); break;
        case "-h" or "--help":
            Console.WriteLine("usage: RaftKv.Storage.Bench [--dir D] [--seconds N per measurement] [--recovery-mb N (0: skip)] [--entry-bytes N]");
            return 0;
        default:
            Console.Error.WriteLine($"unknown argument {args[i]}");
            return 2;
    }
}

Directory.CreateDirectory(dir);
var payload = new byte[entryBytes];
new Random(1).NextBytes(payload);
var frame = WalRecord.EntryFrameSize(entryBytes);
Console.WriteLine($"directory {Path.GetFullPath(dir)}, {entryBytes}-byte entries ({frame} bytes framed), {seconds:0.#} s per measurement");
Console.WriteLine("raw = plain pwrite + fdatasync loop appending the same bytes per batch to one file in the same directory");
Console.WriteLine("WAL = FileLogStorage with space reserved ahead (the default); WAL-grow = PreallocateBytes 0 (every sync grows the file)");
Console.WriteLine("cpu = this process's CPU time per sync (user + system), µs");
Console.WriteLine();
Console.WriteLine($"{"batch",5} | {"WAL entries/s",13} | {"WAL syncs/s",11} | {"cpu",5} | {"WAL-grow syncs/s",16} | {"cpu",5} | {"raw syncs/s",11} | {"cpu",5} | {"WAL/raw",7}");
Console.WriteLine(new string('-', 110));
const int Rounds = 6; // the variants alternate in short rounds so that drifting fsync latency hits all alike
var reserving = StorageOptions.Default;
var growing = StorageOptions.Default with { PreallocateBytes = 0 };
foreach (var batch in new[] { 1, 16, 256 })
{
    Raw(batch, Math.Min(0.5, seconds / 6)); // warm-up: the disk, and the JIT (tiered compilation) for the WAL's code
    Wal(batch, Math.Min(1.0, seconds / 3), reserving);
    Measure raw = default, wal = default, grow = default;
    for (var r = 0; r < Rounds; r++)
    {
        var slice = seconds / Rounds;
        if (r % 2 == 0)
        {
            raw += Raw(batch, slice);
            wal += Wal(batch, slice, reserving);
            grow += Wal(batch, slice, growing);
        }
        else
        {
            grow += Wal(batch, slice, growing);
            wal += Wal(batch, slice, reserving);
            raw += Raw(batch, slice);
        }
    }
    Console.WriteLine($"{batch,5} | {wal.SyncsPerSecond * batch,13:N0} | {wal.SyncsPerSecond,11:N0} | {wal.CpuMicrosPerSync,5:N0} | {grow.SyncsPerSecond,16:N0} | {grow.CpuMicrosPerSync,5:N0} | " +
                      $"{raw.SyncsPerSecond,11:N0} | {raw.CpuMicrosPerSync,5:N0} | {wal.SyncsPerSecond / raw.SyncsPerSecond,7:0.00}");
}

var cpu = AppendOnly(2_000_000);
Console.WriteLine();
Console.WriteLine($"append CPU cost without fsync (batches of 256, written to the OS page cache, never fsynced): {cpu:N0} entries/s");
if (recoveryMb > 0) Recovery(recoveryMb);
return 0;

// Appends of `batch` entries followed by one Sync, for `secs`.
Measure Wal(int batch, double secs, StorageOptions options)
{
    var walDir = Path.Combine(dir, "wal-" + batch);
    if (Directory.Exists(walDir)) Directory.Delete(walDir, true);
    var entries = new Entry[batch];
    long syncs = 0;
    ulong next = 1;
    var sw = new Stopwatch();
    TimeSpan cpu;
    using (var wal = FileLogStorage.Open(walDir, options))
    {
        var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
        sw.Start();
        while (sw.Elapsed.TotalSeconds < secs)
        {
            for (var k = 0; k < batch; k++) entries[k] = new Entry(next++, 1, EntryType.Normal, payload);
            wal.Append(entries);
            wal.Sync();
            syncs++;
        }
        sw.Stop();
        cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
    }
    Directory.Delete(walDir, true);
    return new Measure(syncs, sw.Elapsed, cpu);
}

// Appends only, no fsync: the CPU cost of framing, checksums, index and cache.
double AppendOnly(int count)
{
    var walDir = Path.Combine(dir, "wal-cpu");
    if (Directory.Exists(walDir)) Directory.Delete(walDir, true);
    var entries = new Entry[256];
    ulong next = 1;
    Stopwatch sw;
    using (var wal = FileLogStorage.Open(walDir, new StorageOptions { SegmentSize = 1L << 30 })) // no segment roll (and its fsync) inside
    {
        sw = Stopwatch.StartNew();
        while (next <= (ulong)count)
        {
            for (var k = 0; k < entries.Length; k++) entries[k] = new Entry(next++, 1, EntryType.Normal, payload);
            wal.Append(entries);
        }
        sw.Stop();
    }
    Directory.Delete(walDir, true);
    return (next - 1) / sw.Elapsed.TotalSeconds;
}

// The same number of bytes per batch written with one pwrite and one fdatasync.
Measure Raw(int batch, double secs)
{
    var path = Path.Combine(dir, "raw.bin");
    var buffer = new byte[batch * frame];
    new Random(2).NextBytes(buffer);
    long n = 0, offset = 0;
    using var h = File.OpenHandle(path, FileMode.Create, FileAccess.ReadWrite);
    var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
    var sw = Stopwatch.StartNew();
    while (sw.Elapsed.TotalSeconds < secs)
    {
        RandomAccess.Write(h, buffer, offset);
        offset += buffer.Length;
        Durable.FlushData(h);
        n++;
    }
    sw.Stop();
    var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpuBefore;
    File.Delete(path);
    return new Measure(n, sw.Elapsed, cpu);
}

void Recovery(int mb)
{
    var walDir = Path.Combine(dir, "wal-recovery");
    if (Directory.Exists(walDir)) Directory.Delete(walDir, true);
    var target = (long)mb << 20;
    var entries = new Entry[4096];
    ulong next = 1;
    var sw = Stopwatch.StartNew();
    using (var wal = FileLogStorage.Open(walDir))
    {
        wal.SetHardState(new HardState(1, "a", 0));
        while ((long)next * frame < target)
        {
            for (var k = 0; k < entries.Length; k++) entries[k] = new Entry(next++, 1, EntryType.Normal, payload);
            wal.Append(entries);
        }
        wal.Sync();
    }
    var written = sw.Elapsed;
    var bytes = Directory.GetFiles(walDir).Sum(f => new FileInfo(f).Length);
    GC.Collect();
    var before = GC.GetTotalMemory(true);
    sw.Restart();
    using (var wal = FileLogStorage.Open(walDir))
    {
        sw.Stop();
        var after = GC.GetTotalMemory(true);
        Console.WriteLine();
        Console.WriteLine($"recovery: {bytes / 1048576.0:N0} MiB in {wal.SegmentCount} segments, {wal.LastIndex:N0} entries " +
                          $"(written in {written.TotalSeconds:N1} s): opened in {sw.Elapsed.TotalSeconds:N2} s = {bytes / 1e6 / sw.Elapsed.TotalSeconds:N0} MB/s, " +
                          $"{wal.LastIndex / sw.Elapsed.TotalSeconds:N0} entries/s, index memory {(after - before) / 1048576.0:N0} MiB (page cache warm)");
        GC.KeepAlive(wal);
    }
    Directory.Delete(walDir, true);
}

/// <summary>Syncs done, and the wall-clock and CPU time they took; adds up over rounds.</summary>
internal readonly record struct Measure(long Syncs, TimeSpan Wall, TimeSpan Cpu)
{
    public double SyncsPerSecond => Wall > TimeSpan.Zero ? Syncs / Wall.TotalSeconds : 0;

    public double CpuMicrosPerSync => Syncs > 0 ? Cpu.TotalMicroseconds / Syncs : 0;

    public static Measure operator +(Measure a, Measure b) => new(a.Syncs + b.Syncs, a.Wall + b.Wall, a.Cpu + b.Cpu);
}
