// A read-only memory mapping of a whole file, shared by the GGUF, safetensors and llama2.c readers.
// Handles: opening read-only (others may read too), the base pointer and the true file length, turning
// IO failures into InvalidFileException naming the file, and dropping the file's resident pages from the process
// (ReleaseResident: madvise MADV_DONTNEED on Linux; the pages are read again from the page cache or the file when
// touched, the values never change), so converting a mapped model does not keep the whole file resident.
// Does not handle: writing, files that change while mapped, zero-length files (they are rejected, as no format
// here can be empty), releasing pages on other systems than Linux (a no-op there).
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace Quill.Formats;

/// <summary>A whole file mapped read-only; the pointer stays valid until Dispose.</summary>
internal sealed unsafe partial class MappedFile : IDisposable, IMappedFileOwner
{
    private readonly MemoryMappedFile map;
    private readonly MemoryMappedViewAccessor view;
    private byte* basePtr;

    public string Path { get; }

    /// <summary>Length of the file in bytes (not the page-rounded view capacity).</summary>
    public long Length { get; }

    private MappedFile(string path, MemoryMappedFile map, MemoryMappedViewAccessor view, long length)
    {
        Path = path;
        this.map = map;
        this.view = view;
        Length = length;
        byte* p = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        basePtr = p + view.PointerOffset;
    }

    public static MappedFile Open(string path, string formatName)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path))
            throw new InvalidFileException($"{path}: {formatName} file not found; check the path.");
        FileStream? fs = null;
        try
        {
            fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            long length = fs.Length;
            if (length == 0)
                throw new InvalidFileException($"{path}: file is empty, not a {formatName} file; re-download or re-export it.");
            var map = MemoryMappedFile.CreateFromFile(fs, null, 0, MemoryMappedFileAccess.Read, HandleInheritability.None, leaveOpen: false);
            fs = null; // owned by the map now
            var view = map.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
            return new MappedFile(path, map, view, length);
        }
        catch (IOException e)
        {
            throw new InvalidFileException($"{path}: cannot read {formatName} file ({e.Message}); check permissions and the path.", e);
        }
        catch (UnauthorizedAccessException e)
        {
            throw new InvalidFileException($"{path}: cannot read {formatName} file ({e.Message}); check permissions.", e);
        }
        finally
        {
            fs?.Dispose();
        }
    }

    /// <summary>Pointer to the first byte of the file.</summary>
    public byte* Pointer
    {
        get
        {
            ObjectDisposedException.ThrowIf(basePtr == null, this);
            return basePtr;
        }
    }

    /// <summary>A span over [offset, offset + length); the caller has already checked the bounds.</summary>
    public ReadOnlySpan<byte> Span(long offset, long length)
    {
        if (offset < 0 || length < 0 || offset + length > Length)
            throw new ArgumentOutOfRangeException(nameof(offset), $"range [{offset}, {offset + length}) outside file of {Length} bytes");
        if (length > int.MaxValue)
            throw new InvalidOperationException($"{Path}: a span cannot cover {length} bytes (over 2 GiB); use the pointer accessor.");
        return new ReadOnlySpan<byte>(Pointer + offset, (int)length);
    }

    /// <summary>Drops the mapping's resident pages from this process (Linux); later reads fault them back in.</summary>
    public void ReleaseResident()
    {
        if (basePtr == null || !OperatingSystem.IsLinux()) return;
        long page = Environment.SystemPageSize;
        byte* start = basePtr - view.PointerOffset; // the view starts on a page
        long bytes = (view.PointerOffset + Length + page - 1) / page * page;
        _ = Madvise((nint)start, (nuint)bytes, MadvDontNeed); // a hint: a failure leaves the pages resident
    }

    private const int MadvDontNeed = 4;

    [LibraryImport("libc", EntryPoint = "madvise")]
    [DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
    private static partial int Madvise(nint address, nuint length, int advice);

    public void Dispose()
    {
        if (basePtr != null)
        {
            basePtr = null;
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
        view.Dispose();
        map.Dispose();
    }
}

/// <summary>Something holding mapped files whose resident pages can be dropped (see MappedFile.ReleaseResident).</summary>
internal interface IMappedFileOwner
{
    /// <summary>Drops the resident pages of every file it maps; the data stays readable.</summary>
    void ReleaseResident();
}
