// How the CLI joins an MPI job. mpirun (Open MPI) starts every rank with OMPI_COMM_WORLD_SIZE / _RANK /
// _LOCAL_SIZE in its environment; without them nothing here loads libmpi and the process trains alone. Under mpirun
// with more than one rank, Start initializes MPI, sets MPI_ERRORS_RETURN on MPI_COMM_WORLD and installs a SIGTERM
// line: when a rank dies, mpirun prints which one ("mpirun noticed that process rank 1 ... exited on signal 9") and
// terminates the others, each of which then says that it was stopped (if mpirun still forwards its output). Finish ends MPI after a good run; Fail prints
// the rank's one-line error and aborts the whole job (MPI_Abort), since the others would wait for it forever
// (ranks other than 0 after a pause, so that an error every rank meets is printed once).
// A run of one rank (mpirun -np 1) is the plain single-process run: MPI is not even initialized.
using System.Globalization;
using System.Runtime.InteropServices;

namespace Quill.Distributed;

/// <summary>Joins (or not) the MPI job this process was started in.</summary>
public sealed unsafe class MpiLaunch : IDisposable
{
    private readonly MpiLibrary mpi;
    private readonly PosixSignalRegistration? sigterm;
    private bool finished;

    private MpiLaunch(MpiLibrary mpi, MpiCollectives world)
    {
        this.mpi = mpi;
        World = world;
        sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, _ =>
        {
            if (finished) return;
            Console.Error.WriteLine($"error: {world.Describe()}: stopped by mpirun, which ends the job when a rank fails (its message names the rank).");
            Console.Error.Flush();
        });
    }

    /// <summary>The ranks of the job.</summary>
    public MpiCollectives World { get; }

    /// <summary>The job's world size as mpirun set it (1 without mpirun).</summary>
    public static int WorldSize => Variable("OMPI_COMM_WORLD_SIZE") ?? 1;

    /// <summary>Ranks started on this machine (1 without mpirun): the default thread count divides the cores among them.</summary>
    public static int LocalSize => Variable("OMPI_COMM_WORLD_LOCAL_SIZE") ?? 1;

    /// <summary>This process's rank as mpirun set it (0 without mpirun), known before MPI starts.</summary>
    public static int WorldRank => Variable("OMPI_COMM_WORLD_RANK") ?? 0;

    /// <summary>Joins the job when mpirun started more than one rank; null otherwise (nothing loaded).</summary>
    public static MpiLaunch? Start()
    {
        if (WorldSize <= 1) return null;
        var mpi = MpiLibrary.Load();
        int rank, size;
        Check(mpi, mpi.Init(null, 0), "MPI_Init");
        Check(mpi, mpi.CommSetErrhandler(mpi.CommWorld, mpi.ErrorsReturn), "MPI_Comm_set_errhandler");
        Check(mpi, mpi.CommRank(mpi.CommWorld, &rank), "MPI_Comm_rank");
        Check(mpi, mpi.CommSize(mpi.CommWorld, &size), "MPI_Comm_size");
        double seconds = 300;
        if (Environment.GetEnvironmentVariable("QUILL_MPI_TIMEOUT") is { } s
            && (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out seconds) || seconds <= 0))
            throw new InvalidConfigException($"QUILL_MPI_TIMEOUT must be a positive number of seconds (got '{s}').");
        return new MpiLaunch(mpi, new MpiCollectives(mpi, rank, size, TimeSpan.FromSeconds(seconds)));
    }

    /// <summary>Ends MPI after a run every rank finished.</summary>
    public void Finish()
    {
        if (finished) return;
        finished = true;
        Check(mpi, mpi.Finalize(), "MPI_Finalize");
    }

    /// <summary>
    /// Prints this rank's one-line error and ends every rank of the job (does not return). A rank other than 0 waits
    /// two seconds first: a mistake every rank makes (a bad option, a bad config) is then said once, by rank 0, whose
    /// abort ends the others before they speak.
    /// </summary>
    public void Fail(string message)
    {
        finished = true;
        if (World.Rank != 0) Thread.Sleep(2000);
        Console.Error.WriteLine($"error: {World.Describe()}: {message}");
        Console.Error.Flush();
        Thread.Sleep(200); // let mpirun forward the line before the abort ends the job
        mpi.Abort(mpi.CommWorld, 1);
        Environment.Exit(1);
    }

    public void Dispose() => sigterm?.Dispose();

    private static int? Variable(string name) =>
        int.TryParse(Environment.GetEnvironmentVariable(name), NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n > 0 ? n : null;

    private static void Check(MpiLibrary mpi, int code, string call)
    {
        if (code != MpiLibrary.Success) throw new QuillException($"{call} failed: {mpi.Describe(code)}.");
    }
}
