// What data-parallel training needs from the processes it runs in: the rank and the world size, an in-place sum that
// runs in the background while backward goes on (gradients of finished layers), and the blocking collectives of
// ZeRO-1 and the step's scalars. Quill.Distributed implements it over MPI; the trainer runs alone without one.
// Every rank must make the same calls in the same order (MPI's rule for collectives).
// Buffers handed to StartSum must stay put until WaitAll (Tensor storage is pinned).
namespace Quill.Training;

/// <summary>Collective operations across the ranks of a data-parallel run.</summary>
public interface ICollectives
{
    /// <summary>This process's rank, 0 to Size - 1; rank 0 logs, plots and writes checkpoints.</summary>
    int Rank { get; }

    /// <summary>The number of ranks.</summary>
    int Size { get; }

    /// <summary>Starts summing buffer element-wise over all ranks, in place; complete after <see cref="WaitAll"/>.</summary>
    void StartSum(Memory<float> buffer);

    /// <summary>Lets started operations advance (MPI moves non-blocking collectives only inside its own calls).</summary>
    void Progress();

    /// <summary>Waits for every started operation.</summary>
    void WaitAll();

    /// <summary>Sums values element-wise over all ranks, in place (the step's loss and squared norms).</summary>
    void Sum(Span<double> values);

    /// <summary>Sums send ([Size * n]) over all ranks and leaves block Rank ([n]) of the result in receive.</summary>
    void ReduceScatterSum(ReadOnlySpan<float> send, Span<float> receive);

    /// <summary>Every rank's send ([n]) side by side in receive ([Size * n]), on every rank.</summary>
    void AllGather(ReadOnlySpan<float> send, Span<float> receive);

    /// <summary>Every rank's send ([n]) side by side in receive ([Size * n]) on rank 0 (receive is unused elsewhere).</summary>
    void Gather(ReadOnlySpan<float> send, Span<float> receive);

    /// <summary>Seconds this rank has spent waiting for collectives (the communication not hidden behind compute).</summary>
    double WaitSeconds { get; }

    /// <summary>Bytes this rank has handed to collectives (the payload; what the network carries depends on the algorithm).</summary>
    long PayloadBytes { get; }
}
