// ICollectives over MPI_COMM_WORLD. Every collective is started non-blocking (MPI_Iallreduce,
// MPI_Ireduce_scatter_block, MPI_Iallgather, MPI_Igather) and waited for by polling MPI_Test, so that no rank can
// wait forever: when the other ranks have not answered within the timeout (QUILL_MPI_TIMEOUT seconds, default 300;
// longer than rank 0's evaluations and checkpoint writes, during which the others wait), this rank prints one line
// naming itself and what it waited for and aborts the job (MPI_Abort ends every rank). A rank that dies is mpirun's
// to notice: it ends the job and names the rank (see MpiLaunch). Errors are returned (MPI_ERRORS_RETURN) and
// raised as a QuillException with Open MPI's words instead of MPI's default abort without context.
// Waiting yields the core between polls (oversubscribed ranks share cores with the ones they wait for).
// Not handled: communicators other than MPI_COMM_WORLD, buffers over 2^31 - 1 elements (MPI's int counts).
using System.Buffers;
using System.Diagnostics;
using Quill.Training;

namespace Quill.Distributed;

/// <summary>The trainer's collectives over Open MPI's MPI_COMM_WORLD.</summary>
public sealed unsafe class MpiCollectives : ICollectives
{
    private readonly MpiLibrary mpi;
    private readonly TimeSpan timeout;
    private readonly List<(nint Request, MemoryHandle Pin)> pending = [];
    private long waitTicks;

    internal MpiCollectives(MpiLibrary mpi, int rank, int size, TimeSpan timeout)
    {
        this.mpi = mpi;
        Rank = rank;
        Size = size;
        this.timeout = timeout;
    }

    public int Rank { get; }

    public int Size { get; }

    public double WaitSeconds => Stopwatch.GetElapsedTime(0, waitTicks).TotalSeconds;

    public long PayloadBytes { get; private set; }

    /// <summary>"2 ranks" style name of the world, for log lines.</summary>
    public string Describe() => $"rank {Rank} of {Size}";

    public void StartSum(Memory<float> buffer)
    {
        var pin = buffer.Pin();
        nint request;
        Check(mpi.Iallreduce((void*)mpi.InPlace, pin.Pointer, buffer.Length, mpi.Float, mpi.Sum, mpi.CommWorld, &request), "all-reduce");
        pending.Add((request, pin));
        PayloadBytes += 4L * buffer.Length;
    }

    public void Progress()
    {
        for (int i = pending.Count - 1; i >= 0; i--)
        {
            var (request, pin) = pending[i];
            int done = 0;
            Check(mpi.Test(&request, &done, 0), "all-reduce");
            if (done == 0) continue;
            pin.Dispose();
            pending.RemoveAt(i);
        }
    }

    public void WaitAll()
    {
        long start = Stopwatch.GetTimestamp();
        int polls = 0;
        while (pending.Count > 0)
        {
            Progress();
            if (pending.Count > 0) Pause(start, ref polls, "all-reduce of the gradients");
        }
        waitTicks += Stopwatch.GetTimestamp() - start;
    }

    public void Sum(Span<double> values)
    {
        fixed (double* p = values)
        {
            nint request;
            Check(mpi.Iallreduce((void*)mpi.InPlace, p, values.Length, mpi.Double, mpi.Sum, mpi.CommWorld, &request), "all-reduce");
            Wait(request, "all-reduce of the step's loss");
        }
        PayloadBytes += 8L * values.Length;
    }

    public void ReduceScatterSum(ReadOnlySpan<float> send, Span<float> receive)
    {
        if (send.Length != (long)receive.Length * Size) throw new ArgumentException($"reduce-scatter sends {Size} blocks of {receive.Length}, got {send.Length}.", nameof(send));
        fixed (float* s = send, r = receive)
        {
            nint request;
            Check(mpi.IreduceScatterBlock(s, r, receive.Length, mpi.Float, mpi.Sum, mpi.CommWorld, &request), "reduce-scatter");
            Wait(request, "reduce-scatter of the gradients");
        }
        PayloadBytes += 4L * send.Length;
    }

    public void AllGather(ReadOnlySpan<float> send, Span<float> receive)
    {
        if (receive.Length != (long)send.Length * Size) throw new ArgumentException($"all-gather receives {Size} blocks of {send.Length}, got {receive.Length}.", nameof(receive));
        fixed (float* s = send, r = receive)
        {
            nint request;
            Check(mpi.Iallgather(s, send.Length, mpi.Float, r, send.Length, mpi.Float, mpi.CommWorld, &request), "all-gather");
            Wait(request, "all-gather of the parameters");
        }
        PayloadBytes += 4L * receive.Length;
    }

    public void Gather(ReadOnlySpan<float> send, Span<float> receive)
    {
        if (Rank == 0 && receive.Length != (long)send.Length * Size) throw new ArgumentException($"gather receives {Size} blocks of {send.Length}, got {receive.Length}.", nameof(receive));
        fixed (float* s = send, r = receive)
        {
            nint request;
            Check(mpi.Igather(s, send.Length, mpi.Float, r, send.Length, mpi.Float, 0, mpi.CommWorld, &request), "gather");
            Wait(request, "gather of the optimizer state");
        }
        PayloadBytes += 4L * send.Length;
    }

    private void Wait(nint request, string what)
    {
        long start = Stopwatch.GetTimestamp();
        int polls = 0;
        while (true)
        {
            int done = 0;
            Check(mpi.Test(&request, &done, 0), what);
            if (done != 0) break;
            Pause(start, ref polls, what);
        }
        waitTicks += Stopwatch.GetTimestamp() - start;
    }

    /// <summary>Between polls: yield the core, later sleep a millisecond; past the timeout, end the job.</summary>
    private void Pause(long start, ref int polls, string what)
    {
        if (++polls < 200) Thread.Yield();
        else Thread.Sleep(1);
        if ((polls & 127) != 0 || Stopwatch.GetElapsedTime(start) < timeout) return;
        Console.Error.WriteLine($"error: {Describe()}: no answer from the other ranks for {timeout.TotalSeconds:F0} s during the {what}; one of them has stopped or hangs. Ending the job (QUILL_MPI_TIMEOUT sets the limit).");
        Console.Error.Flush();
        Thread.Sleep(200); // let mpirun forward the line before the abort ends the job
        mpi.Abort(mpi.CommWorld, 1);
    }

    private void Check(int code, string what)
    {
        if (code != MpiLibrary.Success) throw new QuillException($"{Describe()}: the {what} failed: {mpi.Describe(code)}.");
    }
}
