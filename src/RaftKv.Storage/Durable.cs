using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace RaftKv.Storage;

/// <summary>
/// The few durability primitives the storage needs: flushing a file's data to the device and making a directory's
/// entries (creations, renames, deletions) durable. On Linux these are fdatasync(2) and fsync(2) of the directory;
/// elsewhere the portable fallbacks (FlushFileBuffers; directories need no flush on Windows).
/// </summary>
internal static partial class Durable
{
    private static readonly bool IsLinux = OperatingSystem.IsLinux();

    /// <summary>
    /// Makes the file's data (and the metadata needed to read it back, such as its size) durable. fdatasync skips the
    /// timestamp update an fsync would also write, which saves a journal write per commit on ext4 and xfs.
    /// </summary>
    public static void FlushData(SafeFileHandle handle)
    {
        if (IsLinux)
        {
            var added = false;
            try
            {
                handle.DangerousAddRef(ref added);
                if (fdatasync((int)handle.DangerousGetHandle()) == 0) return;
                var errno = Marshal.GetLastPInvokeError();
                throw new IOException($"fdatasync failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})");
            }
            finally
            {
                if (added) handle.DangerousRelease();
            }
        }
        RandomAccess.FlushToDisk(handle);
    }

    /// <summary>
    /// Extends the file to <paramref name="size"/> bytes with space reserved on the device (fallocate(2)); the new bytes
    /// read as zeros. False where that is not supported (other systems, 32-bit processes, some filesystems) or fails
    /// (no space): the caller then just appends. Why bother: appending past the end changes the file's size, which
    /// every fdatasync must then record too; writing into reserved space changes less metadata (on ext4 the reserved
    /// extents still have to be marked written, which is why the WAL also writes zeros ahead of its records: see Segment.Write).
    /// Figures: docs/measurements.md.
    /// </summary>
    public static bool TryPreallocate(SafeFileHandle handle, long size)
    {
        // off_t is 64 bits only in 64-bit processes; 32-bit ones would need fallocate64.
        if (!IsLinux || !Environment.Is64BitProcess) return false;
        var added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            var fd = (int)handle.DangerousGetHandle();
            for (var attempt = 0; attempt < 3; attempt++)
            {
                if (fallocate(fd, 0, 0, size) == 0) return true;
                if (Marshal.GetLastPInvokeError() != EINTR) return false;
            }
            return false;
        }
        finally
        {
            if (added) handle.DangerousRelease();
        }
    }

    /// <summary>Makes the entries of <paramref name="directory"/> durable (after a create, rename or delete in it).</summary>
    public static void FlushDirectory(string directory)
    {
        if (OperatingSystem.IsWindows()) return; // NTFS journals directory operations; there is no directory handle to flush.
        var fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
        {
            var errno = Marshal.GetLastPInvokeError();
            throw new IOException($"cannot open directory {directory} to fsync it: {Marshal.GetPInvokeErrorMessage(errno)}");
        }
        try
        {
            if (fsync(fd) != 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                // Some filesystems (tmpfs on old kernels, some FUSE) refuse fsync on directories: nothing more can be done there.
                if (errno != EINVAL) throw new IOException($"fsync of directory {directory} failed: {Marshal.GetPInvokeErrorMessage(errno)}");
            }
        }
        finally
        {
            _ = close(fd);
        }
    }

    /// <summary>Creates <paramref name="directory"/> if needed and, when it was created, makes that durable in its parent.</summary>
    public static void EnsureDirectory(string directory)
    {
        if (Directory.Exists(directory)) return;
        Directory.CreateDirectory(directory);
        var parent = Path.GetDirectoryName(Path.GetFullPath(directory).TrimEnd(Path.DirectorySeparatorChar));
        if (!string.IsNullOrEmpty(parent)) FlushDirectory(parent);
    }

    // Linux values; open(2) flags differ on macOS, where only O_RDONLY (0) matters and the others are ignored there.
    private static int O_RDONLY => 0;
    private static int O_DIRECTORY => IsLinux ? 0x10000 : 0;
    private static int O_CLOEXEC => IsLinux ? 0x80000 : 0;
    private const int EINVAL = 22;
    private const int EINTR = 4;

    [LibraryImport("libc", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
    private static partial int open(string path, int flags);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fsync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fdatasync(int fd);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int close(int fd);

    // Called only in 64-bit processes, where off_t is 64 bits.
    [LibraryImport("libc", SetLastError = true)]
    private static partial int fallocate(int fd, int mode, long offset, long length);
}
