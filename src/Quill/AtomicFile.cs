// Writes a file under a temporary name in the same folder, flushes it to disk, then renames it over the target,
// so a crash or a full disk never leaves half a file where a good one stood; then flushes the folder itself
// (open + fsync on the directory, POSIX), so that after a power loss the new name is on disk too, not only the
// data under the temporary name. IO failures become one QuillException naming the file.
// Does not handle: Windows folder flushes (NTFS journals the rename; SyncDirectory does nothing there), file
// systems that refuse fsync on a folder (EINVAL: skipped, as SQLite and LevelDB do), folders it may not open.
using System.Runtime.InteropServices;
using System.Text;

namespace Quill;

/// <summary>Crash-safe file writes.</summary>
public static partial class AtomicFile
{
    /// <summary>Writes through a callback into a temporary file, then renames it to path.</summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        string temp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new QuillException($"could not write {full}: {e.Message} (the previous file, if any, is unchanged; free disk space or fix permissions and retry).", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
        try
        {
            SyncDirectory(dir);
        }
        catch (IOException e)
        {
            throw new QuillException($"wrote {full} but could not flush its folder to disk: {e.Message} (check the disk; the file may not survive a power loss).", e);
        }
    }

    public static void WriteAllText(string path, string text) => Write(path, s =>
    {
        byte[] bytes = Encoding.UTF8.GetBytes(text);
        s.Write(bytes, 0, bytes.Length);
    });

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        byte[] copy = bytes.ToArray();
        Write(path, s => s.Write(copy, 0, copy.Length));
    }

    /// <summary>
    /// Flushes a folder's entries to disk, so that renames and new files in it survive a power loss. Throws
    /// IOException when the disk reports an error; does nothing on Windows, for a folder it cannot open, or where
    /// the file system cannot flush a folder.
    /// </summary>
    public static void SyncDirectory(string dir)
    {
        ArgumentNullException.ThrowIfNull(dir);
        if (OperatingSystem.IsWindows()) return;
        int cloexec = OperatingSystem.IsLinux() ? 0x80000 : OperatingSystem.IsMacOS() ? 0x1000000 : 0; // O_CLOEXEC
        int fd = Native.Open(dir, cloexec); // O_RDONLY (0): a folder opens read-only on Linux and macOS
        if (fd < 0) return; // not readable (a write-only folder): there is no handle to flush through
        try
        {
            if (Native.Fsync(fd) != 0)
            {
                int error = Marshal.GetLastPInvokeError();
                if (error is not (Einval or Enotsup or Eopnotsupp)) throw new IOException($"flushing folder {dir} failed (errno {error}).");
            }
        }
        finally
        {
            _ = Native.Close(fd);
        }
    }

    private const int Einval = 22;
    private const int Enotsup = 95; // Linux; equal to EOPNOTSUPP there
    private const int Eopnotsupp = 102; // macOS

    private static partial class Native
    {
        [LibraryImport("libc", EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        public static partial int Open(string path, int flags);

        [LibraryImport("libc", EntryPoint = "fsync", SetLastError = true)]
        public static partial int Fsync(int fd);

        [LibraryImport("libc", EntryPoint = "close", SetLastError = true)]
        public static partial int Close(int fd);
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (File.Exists(path)) File.Delete(path);
        }
        catch (IOException)
        {
            // Best effort: the temp name never shadows a real file.
        }
    }
}
