// Storage for activations and their gradients that is handed back and reused every step. A step asks for the same
// sizes in the same order each time, so after the first step every request is served from the free lists and a
// training step allocates no large arrays. Release hands a buffer back early (the graph does so with gradients no
// op will read again), so the backward pass reuses a few layers' worth of gradient storage. Not thread-safe: one arena per graph, used from the thread that runs it.
namespace Quill.Tensors;

/// <summary>Recycles float storage between steps, keyed by exact length.</summary>
public sealed class TensorArena
{
    private readonly Dictionary<int, Stack<float[]>> free = [];
    private readonly List<float[]> inUse = [];

    /// <summary>Bytes currently held (in use and free).</summary>
    public long BytesHeld { get; private set; }

    /// <summary>
    /// A contiguous tensor over recycled storage, starting on a 64-byte line (Tensor.Aligned); zeroed when asked
    /// (otherwise its contents are stale).
    /// </summary>
    public Tensor Rent(int[] shape, bool zero)
    {
        int n = Tensor.CheckedElementCount(shape), length = checked(n + Tensor.AlignPad);
        float[] buf;
        if (free.TryGetValue(length, out var stack) && stack.Count > 0)
        {
            buf = stack.Pop();
            if (zero) Array.Clear(buf);
        }
        else
        {
            buf = Tensor.AllocateStorage(length);
            BytesHeld += 4L * length;
        }
        inUse.Add(buf);
        return new Tensor(buf, Tensor.AlignedOffset(buf), shape, Tensor.ContiguousStrides(shape));
    }

    /// <summary>Whether t covers the whole of a buffer this arena would rent (not a view of part of one).</summary>
    public static bool IsWhole(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        return !t.IsForeign && t.Length + Tensor.AlignPad == t.Storage.Length && t.Offset == Tensor.AlignedOffset(t.Storage);
    }

    /// <summary>
    /// Hands one rented buffer back before the step ends (a gradient no op will read again), so a later Rent of the
    /// same length reuses it; the tensors over it must not be used afterwards. False when it is not rented here.
    /// </summary>
    public bool Release(float[] buffer)
    {
        ArgumentNullException.ThrowIfNull(buffer);
        int i = inUse.LastIndexOf(buffer); // released buffers are mostly recent rents
        if (i < 0) return false;
        inUse.RemoveAt(i);
        if (!free.TryGetValue(buffer.Length, out var stack)) free[buffer.Length] = stack = new Stack<float[]>();
        stack.Push(buffer);
        return true;
    }

    /// <summary>Returns every rented buffer to the free lists; tensors rented before must not be used after this.</summary>
    public void Reset()
    {
        foreach (float[] buf in inUse)
        {
            if (!free.TryGetValue(buf.Length, out var stack)) free[buf.Length] = stack = new Stack<float[]>();
            stack.Push(buf);
        }
        inUse.Clear();
    }

    /// <summary>Drops all storage (in use and free).</summary>
    public void Clear()
    {
        inUse.Clear();
        free.Clear();
        BytesHeld = 0;
    }
}
