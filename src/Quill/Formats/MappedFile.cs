// A read-only memory mapping of a whole file, shared by the GGUF, safetensors and llama2.c readers.
// Handles: opening read-only (others may read too), the base pointer and the true file length, turning
// IO failures into InvalidFileException naming the file, and dropping the file's resident pages from the process
// (ReleaseResident: madvise MADV_DONTNEED on Linux; the pages are read again from the page cache or the file when
// touched, the values never change), so converting a mapped model does not keep the whole file resident.
// Inside a ReadIntoMemory scope (`--no-mmap`) the whole file is read into native memory instead of mapped, so a
// later in-place overwrite of the file cannot fault the process (SIGBUS when a mapped file is truncated under it).
// Does not handle: writing, files that change while mapped (an in-place overwrite of a mapped file can crash the
// process, as with llama.cpp: replace files by rename), zero-length files (they are rejected, as no format here can
// be empty), releasing pages on other systems than Linux (a no-op there).
using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;

namespace Quill.Formats;

/// <summary>A whole file mapped read-only; the pointer stays valid until Dispose.</summary>
internal sealed unsafe partial class MappedFile : IDisposable, IMappedFileOwner
{
    private static readonly AsyncLocal<bool> ReadIntoMemoryFlag = new();
    private readonly MemoryMappedFile? map;
    private readonly MemoryMappedViewAccessor? view;
    private byte* basePtr;
    private byte* owned; // the in-memory copy (ReadIntoMemory), freed on Dispose

    /// <summary>Until the scope is disposed, files opened on this flow of execution are read into memory, not mapped.</summary>
    public static IDisposable ReadIntoMemory()
    {
        bool before = ReadIntoMemoryFlag.Value;
        ReadIntoMemoryFlag.Value = true;
        return new Restore(before);
    }

    private sealed class Restore(bool before) : IDisposable
    {
        public void Dispose() => ReadIntoMemoryFlag.Value = before;
    }

    /// <summary>True when the file was read into memory rather than mapped.</summary>
    public bool InMemory => owned != null;

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

    private MappedFile(string path, byte* memory, long length)
    {
        Path = path;
        Length = length;
        owned = memory;
        basePtr = memory;
    }

    private static MappedFile ReadWhole(string path, FileStream fs, long length)
    {
        byte* memory = (byte*)NativeMemory.AlignedAlloc((nuint)length, 64);
        try
        {
            long done = 0;
            while (done < length)
            {
                int n = fs.Read(new Span<byte>(memory + done, (int)Math.Min(length - done, 1 << 30)));
                if (n == 0) throw new InvalidFileException($"{path}: the file shrank to {done} bytes while it was read; it is being overwritten, try again when it is complete.");
                done += n;
            }
            return new MappedFile(path, memory, length);
        }
        catch
        {
            NativeMemory.AlignedFree(memory);
            throw;
        }
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
            if (ReadIntoMemoryFlag.Value) return ReadWhole(path, fs, length);
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
        if (basePtr == null || view == null || !OperatingSystem.IsLinux()) return;
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
        if (owned != null)
        {
            NativeMemory.AlignedFree(owned);
            owned = null;
            basePtr = null;
        }
        if (basePtr != null && view != null)
        {
            basePtr = null;
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
        view?.Dispose();
        map?.Dispose();
    }
}

/// <summary>Something holding mapped files whose resident pages can be dropped (see MappedFile.ReleaseResident).</summary>
internal interface IMappedFileOwner
{
    /// <summary>Drops the resident pages of every file it maps; the data stays readable.</summary>
    void ReleaseResident();
}
