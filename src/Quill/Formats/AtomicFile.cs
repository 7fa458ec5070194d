// Writes a file so that a crash or a full disk never leaves half a file where a good one stood: the bytes go to
// a temporary file in the same folder, are flushed to disk (fsync), and the temporary file is then renamed over
// the target. Any IO failure removes the temporary file, leaves the previous target intact, and raises a
// QuillException naming the target. Does not handle: fsync of the folder entry itself, cross-volume targets.
namespace Quill.Formats;

/// <summary>Temp-file-then-rename writing used by every Quill writer.</summary>
public static class AtomicFile
{
    /// <summary>
    /// Calls <paramref name="write"/> with a stream on a temporary file beside <paramref name="path"/>, flushes it to
    /// disk and renames it over <paramref name="path"/>.
    /// </summary>
    public static void Write(string path, Action<Stream> write)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(write);
        string full = System.IO.Path.GetFullPath(path);
        string? dir = System.IO.Path.GetDirectoryName(full);
        if (string.IsNullOrEmpty(dir))
            throw new QuillException($"{path}: cannot write here; give a path inside a folder.");
        string temp = System.IO.Path.Combine(dir, "." + System.IO.Path.GetFileName(full) + "." + Environment.ProcessId + "." + Guid.NewGuid().ToString("N")[..8] + ".tmp");
        try
        {
            Directory.CreateDirectory(dir);
            using (var fs = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(temp, full, overwrite: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            TryDelete(temp);
            throw new QuillException($"{path}: write failed ({e.Message}); free disk space or fix permissions, the previous file (if any) is intact.", e);
        }
        catch
        {
            TryDelete(temp);
            throw;
        }
    }

    private static void TryDelete(string temp)
    {
        try
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
        catch (IOException)
        {
            // best effort: the temporary name starts with a dot and says .tmp
        }
        catch (UnauthorizedAccessException)
        {
            // best effort
        }
    }
}
