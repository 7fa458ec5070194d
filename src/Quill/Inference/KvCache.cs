// The key/value cache of one sequence, preallocated so decoding never allocates: per layer one K and one V array
// laid out [Hkv, slots, D] (each kv head's positions contiguous, the layout Kernels.Attention.ForwardCached reads).
// Length counts the positions filled; the engine appends, Reset empties, Truncate keeps a prefix (a chat that
// rewinds to a shared history).
// A layer with a sliding window W (Mistral, Phi-3, Gemma's local layers) keeps only a ring of R = W + C - 1
// positions (C: the engine's prefill chunk), so its memory is bounded by the window, not the context: position p
// lives in slot p mod R, and slots below W - 1 are mirrored after the ring (slots R .. R + W - 2), so any W
// consecutive positions are one contiguous run of rows and the attention kernel reads a window as it reads a full
// cache (starting at slot lo mod R). R leaves room for a whole chunk: while a chunk of C rows is written, no key a
// row of it still needs is overwritten. A layer whose ring would not be smaller than the capacity keeps every
// position, as do all layers of a cache made with keepAll (a reference for tests).
// Truncate on a ring can only rewind to a length whose window is still in the ring (CanTruncate says which); a
// caller that rewinds further starts again from 0.
// Does not handle: quantized caches, paging, sharing one prefix between sequences.
// Glossary: L layers, Hkv key/value heads, D head size, W window, R ring positions, C prefill chunk.
using Quill.Models;

namespace Quill.Inference;

/// <summary>Keys and values of one sequence's past positions.</summary>
public sealed class KvCache
{
    internal KvCache(ModelSpec spec, int capacity, int chunk, bool keepAll = false)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (capacity < 1) throw new InvalidConfigException($"KV cache capacity must be at least 1 (got {capacity}).");
        Capacity = capacity;
        HeadDim = spec.HeadDim;
        KvHeads = spec.KvHeads;
        Keys = new float[spec.Layers][];
        Values = new float[spec.Layers][];
        Window = new int[spec.Layers];
        Ring = new int[spec.Layers];
        Slots = new int[spec.Layers];
        for (int l = 0; l < spec.Layers; l++)
        {
            int w = spec.LayerWindow(l);
            long ring = (long)w + chunk - 1;
            bool bounded = !keepAll && w > 0 && ring + w - 1 < capacity;
            Window[l] = w;
            Ring[l] = bounded ? (int)ring : 0;
            Slots[l] = bounded ? (int)(ring + w - 1) : capacity;
            long perLayer = (long)spec.KvHeads * Slots[l] * spec.HeadDim;
            if (perLayer > Array.MaxLength)
                throw new InvalidConfigException($"a context of {capacity} tokens needs {perLayer} cached values per layer, more than one array holds; use a shorter --context.");
            Keys[l] = new float[perLayer];   // [Hkv, slots, D]
            Values[l] = new float[perLayer]; // [Hkv, slots, D]
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

    /// <summary>Per layer: its window (0: global).</summary>
    internal int[] Window { get; }

    /// <summary>Per layer: ring positions R (0: the layer keeps every position).</summary>
    internal int[] Ring { get; }

    /// <summary>Per layer: rows per kv head (R + W - 1 for a ring, else the capacity).</summary>
    internal int[] Slots { get; }

    /// <summary>One past the highest position written since the last Reset (a ring's slots are not erased by Truncate).</summary>
    private int highWater;

    /// <summary>Bytes of cache memory.</summary>
    public long ByteSize => 2L * Keys.Sum(k => k.LongLength) * sizeof(float);

    /// <summary>True when layer <paramref name="layer"/> keeps only its window (a ring), not every position.</summary>
    public bool IsWindowed(int layer) => Ring[layer] > 0;

    /// <summary>Forgets every position.</summary>
    public void Reset()
    {
        Length = 0;
        highWater = 0;
    }

    /// <summary>True when Truncate(length) keeps what the positions after it need: always without rings; with one, when
    /// the window before <paramref name="length"/> has not been overwritten since.</summary>
    public bool CanTruncate(int length)
    {
        if (length < 0 || length > Length) return false;
        if (length == 0) return true;
        for (int l = 0; l < Ring.Length; l++)
        {
            if (Ring[l] > 0 && highWater - length > Ring[l] - Window[l] + 1) return false;
        }
        return true;
    }

    /// <summary>Keeps the first <paramref name="length"/> positions, forgets the rest.</summary>
    public void Truncate(int length)
    {
        if (length < 0 || length > Length) throw new ArgumentOutOfRangeException(nameof(length), $"cannot truncate a cache of {Length} positions to {length}.");
        if (!CanTruncate(length))
            throw new InvalidOperationException($"the windowed layers no longer hold the positions before {length} (written up to {highWater}); check CanTruncate and start again from 0.");
        Length = length;
        if (length == 0) highWater = 0;
    }

    /// <summary>The row of position pos in a layer (its ring slot, or pos itself).</summary>
    private int Slot(int layer, int pos) => Ring[layer] > 0 ? pos % Ring[layer] : pos;

    /// <summary>
    /// Starts loading the cache lines that position pos of a layer will be written to. The slots of one position are
    /// Hkv short runs far apart, cold by the time they are written (the weights streamed since evicted them); the
    /// engine calls this before a layer's weights stream, so the writes do not stall on memory.
    /// </summary>
    internal unsafe void Prefetch(int layer, int pos)
    {
        if (!System.Runtime.Intrinsics.X86.Sse.IsSupported || (uint)pos >= (uint)Capacity) return;
        int d = HeadDim, slots = Slots[layer], slot = Slot(layer, pos);
        fixed (float* k = Keys[layer], v = Values[layer])
        {
            for (int h = 0; h < KvHeads; h++)
            {
                long at = ((long)h * slots + slot) * d;
                for (int i = 0; i < d; i += 16)
                {
                    System.Runtime.Intrinsics.X86.Sse.Prefetch0(k + at + i);
                    System.Runtime.Intrinsics.X86.Sse.Prefetch0(v + at + i);
                }
            }
        }
    }

    /// <summary>Writes one position's keys and values for a layer (and the mirror of a low ring slot). k, v: [Hkv * D]</summary>
    internal void Store(int layer, int pos, ReadOnlySpan<float> k, ReadOnlySpan<float> v)
    {
        int d = HeadDim, slots = Slots[layer], slot = Slot(layer, pos);
        bool mirror = Ring[layer] > 0 && slot < Window[layer] - 1;
        float[] ks = Keys[layer], vs = Values[layer];
        for (int h = 0; h < KvHeads; h++)
        {
            long at = ((long)h * slots + slot) * d;
            k.Slice(h * d, d).CopyTo(ks.AsSpan((int)at, d));
            v.Slice(h * d, d).CopyTo(vs.AsSpan((int)at, d));
            if (!mirror) continue;
            long copy = at + (long)Ring[layer] * d;
            k.Slice(h * d, d).CopyTo(ks.AsSpan((int)copy, d));
            v.Slice(h * d, d).CopyTo(vs.AsSpan((int)copy, d));
        }
        if (pos + 1 > highWater) highWater = pos + 1;
    }
}
