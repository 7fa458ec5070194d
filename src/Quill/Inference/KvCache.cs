// The key/value cache of one sequence, preallocated for its whole capacity so decoding never allocates: per layer
// one K and one V array laid out [Hkv, capacity, D] (each kv head's positions contiguous, the layout
// Kernels.Attention.ForwardCached reads). Length counts the positions filled; the engine appends, Reset empties,
// Truncate keeps a prefix (a chat that rewinds to a shared history).
// Does not handle: quantized caches, paging, sliding windows, sharing one prefix between sequences.
// Glossary: L layers, Hkv key/value heads, D head size.
using Quill.Models;

namespace Quill.Inference;

/// <summary>Keys and values of one sequence's past positions.</summary>
public sealed class KvCache
{
    internal KvCache(ModelSpec spec, int capacity)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (capacity < 1) throw new InvalidConfigException($"KV cache capacity must be at least 1 (got {capacity}).");
        Capacity = capacity;
        HeadDim = spec.HeadDim;
        KvHeads = spec.KvHeads;
        long perLayer = (long)spec.KvHeads * capacity * spec.HeadDim;
        if (perLayer > Array.MaxLength)
            throw new InvalidConfigException($"a context of {capacity} tokens needs {perLayer} cached values per layer, more than one array holds; use a shorter --context.");
        Keys = new float[spec.Layers][];
        Values = new float[spec.Layers][];
        for (int l = 0; l < spec.Layers; l++)
        {
            Keys[l] = new float[perLayer];   // [Hkv, capacity, D]
            Values[l] = new float[perLayer]; // [Hkv, capacity, D]
        }
    }

    /// <summary>Positions the cache can hold.</summary>
    public int Capacity { get; }

    /// <summary>Positions filled so far (the next token goes at this position).</summary>
    public int Length { get; internal set; }

    /// <summary>Positions still free.</summary>
    public int Remaining => Capacity - Length;

    internal int HeadDim { get; }

    internal int KvHeads { get; }

    internal float[][] Keys { get; }

    internal float[][] Values { get; }

    /// <summary>Bytes of cache memory.</summary>
    public long ByteSize => 2L * Keys.Length * Keys[0].LongLength * sizeof(float);

    /// <summary>Forgets every position.</summary>
    public void Reset() => Length = 0;

    /// <summary>Keeps the first <paramref name="length"/> positions, forgets the rest.</summary>
    public void Truncate(int length)
    {
        if (length < 0 || length > Length) throw new ArgumentOutOfRangeException(nameof(length), $"cannot truncate a cache of {Length} positions to {length}.");
        Length = length;
    }

    /// <summary>
    /// Starts loading the cache lines that position pos of a layer will be written to. The slots of one position are
    /// Hkv short runs far apart, cold by the time they are written (the weights streamed since evicted them); the
    /// engine calls this before a layer's weights stream, so the writes do not stall on memory.
    /// </summary>
    internal unsafe void Prefetch(int layer, int pos)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported || (uint)pos >= (uint)Capacity) return;
        int d = HeadDim;
        fixed (float* k = Keys[layer], v = Values[layer])
        {
            for (int h = 0; h < KvHeads; h++)
            {
                long at = ((long)h * Capacity + pos) * d;
                for (int i = 0; i < d; i += 16)
                {
                    System.Runtime.Intrinsics.X86.Sse.Prefetch0(k + at + i);
                    System.Runtime.Intrinsics.X86.Sse.Prefetch0(v + at + i);
                }
            }
        }
    }

    /// <summary>Writes one position's keys and values for a layer. k, v: [Hkv * D]</summary>
    internal void Store(int layer, int pos, ReadOnlySpan<float> k, ReadOnlySpan<float> v)
    {
        int d = HeadDim;
        float[] ks = Keys[layer], vs = Values[layer];
        for (int h = 0; h < KvHeads; h++)
        {
            long at = ((long)h * Capacity + pos) * d;
            k.Slice(h * d, d).CopyTo(ks.AsSpan((int)at, d));
            v.Slice(h * d, d).CopyTo(vs.AsSpan((int)at, d));
        }
    }
}
