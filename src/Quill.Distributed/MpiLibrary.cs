// The part of Open MPI's C API that Quill uses, bound at run time: libmpi.so.40 is opened with RTLD_GLOBAL (Open
// MPI's plugins resolve their symbols against it), each function is a pointer from NativeLibrary.GetExport, and the
// predefined handles (MPI_COMM_WORLD, MPI_FLOAT, MPI_DOUBLE, MPI_SUM, MPI_ERRORS_RETURN, MPI_REQUEST_NULL) are the
// addresses of Open MPI's global objects (ompi_mpi_comm_world, ...), which is what its mpi.h macros expand to.
// Nothing here runs unless MpiLaunch found mpirun's environment; a machine without Open MPI never loads it.
// Not handled: MPICH / Intel MPI / MS-MPI (integer handles, other library names), MPI_Status contents (every call
// passes MPI_STATUS_IGNORE), threads other than the caller's calling MPI (it is initialized without thread support).
using System.Runtime.InteropServices;

namespace Quill.Distributed;

/// <summary>Function pointers and predefined handles of Open MPI's libmpi.</summary>
internal sealed unsafe class MpiLibrary
{
    public const int Success = 0;
    private const string LibraryName = "libmpi.so.40";
    private const int RtldNow = 2, RtldGlobal = 0x100;

    public readonly nint CommWorld, Float, Double, Sum, ErrorsReturn;
    public readonly nint InPlace = 1;
    public readonly delegate* unmanaged<int*, nint, int> Init;
    public readonly delegate* unmanaged<int> Finalize;
    public readonly delegate* unmanaged<nint, int*, int> CommRank, CommSize;
    public readonly delegate* unmanaged<nint, nint, int> CommSetErrhandler;
    public readonly delegate* unmanaged<nint, int, int> Abort;
    public readonly delegate* unmanaged<int, byte*, int*, int> ErrorString;
    public readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int> Iallreduce;
    public readonly delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int> IreduceScatterBlock;
    public readonly delegate* unmanaged<void*, int, nint, void*, int, nint, nint, nint*, int> Iallgather;
    public readonly delegate* unmanaged<void*, int, nint, void*, int, nint, int, nint, nint*, int> Igather;
    public readonly delegate* unmanaged<nint*, int*, nint, int> Test;

    private MpiLibrary(nint lib)
    {
        nint Get(string name) => NativeLibrary.GetExport(lib, name);
        CommWorld = Get("ompi_mpi_comm_world");
        Float = Get("ompi_mpi_float");
        Double = Get("ompi_mpi_double");
        Sum = Get("ompi_mpi_op_sum");
        ErrorsReturn = Get("ompi_mpi_errors_return");
        Init = (delegate* unmanaged<int*, nint, int>)Get("MPI_Init");
        Finalize = (delegate* unmanaged<int>)Get("MPI_Finalize");
        CommRank = (delegate* unmanaged<nint, int*, int>)Get("MPI_Comm_rank");
        CommSize = (delegate* unmanaged<nint, int*, int>)Get("MPI_Comm_size");
        CommSetErrhandler = (delegate* unmanaged<nint, nint, int>)Get("MPI_Comm_set_errhandler");
        Abort = (delegate* unmanaged<nint, int, int>)Get("MPI_Abort");
        ErrorString = (delegate* unmanaged<int, byte*, int*, int>)Get("MPI_Error_string");
        Iallreduce = (delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int>)Get("MPI_Iallreduce");
        IreduceScatterBlock = (delegate* unmanaged<void*, void*, int, nint, nint, nint, nint*, int>)Get("MPI_Ireduce_scatter_block");
        Iallgather = (delegate* unmanaged<void*, int, nint, void*, int, nint, nint, nint*, int>)Get("MPI_Iallgather");
        Igather = (delegate* unmanaged<void*, int, nint, void*, int, nint, int, nint, nint*, int>)Get("MPI_Igather");
        Test = (delegate* unmanaged<nint*, int*, nint, int>)Get("MPI_Test");
    }

    /// <summary>Opens libmpi.so.40 (globally, for Open MPI's plugins) and resolves what Quill calls.</summary>
    public static MpiLibrary Load()
    {
        nint lib;
        try
        {
            lib = dlopen(LibraryName, RtldNow | RtldGlobal);
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            lib = 0;
        }
        if (lib == 0)
            throw new QuillException($"this process runs under mpirun but {LibraryName} (Open MPI) could not be loaded; install Open MPI (Debian/Ubuntu: apt-get install openmpi-bin libopenmpi-dev) on every machine of the job.");
        try
        {
            return new MpiLibrary(lib);
        }
        catch (EntryPointNotFoundException e)
        {
            throw new QuillException($"{LibraryName} is not the Open MPI 4 or 5 library Quill expects ({e.Message}).");
        }
    }

    /// <summary>Open MPI's words for an error code.</summary>
    public string Describe(int code)
    {
        byte* text = stackalloc byte[512]; // MPI_MAX_ERROR_STRING is 256 in Open MPI
        int length = 0;
        if (ErrorString(code, text, &length) != Success) return $"MPI error {code}";
        return $"MPI error {code}: {System.Text.Encoding.ASCII.GetString(text, length)}";
    }

    // glibc 2.34 and later export dlopen from libc.so.6 (older ones from libdl.so.2, which still forwards to it).
    [DllImport("libc", EntryPoint = "dlopen")]
    private static extern nint dlopen([MarshalAs(UnmanagedType.LPUTF8Str)] string file, int mode);
}
