// A per-thread memo of chunk bytes -> token ids for the BPE encoder: open addressing with linear probing over flat
// arrays (keys in one byte arena, values in one int arena), so a hit costs one hash, one probe or two and a
// short memcmp, with no allocation and no interface calls. When full it is simply cleared.
using System.Runtime.CompilerServices;

namespace Quill.Tokenization;

internal sealed class ChunkCache
{
    private const int Slots = 1 << 17;           // power of two, twice the entry limit
    private const int MaxEntries = Slots / 2;
    private readonly int[] slotEntry = new int[Slots]; // entry index + 1, 0 = empty
    private readonly int[] entryHash = new int[MaxEntries];
    private readonly int[] keyStart = new int[MaxEntries];
    private readonly int[] keyLength = new int[MaxEntries];
    private readonly int[] valueStart = new int[MaxEntries];
    private readonly int[] valueLength = new int[MaxEntries];
    private byte[] keys = new byte[1 << 20];
    private int[] values = new int[1 << 18];
    private int count, keyUsed, valueUsed;

    /// <summary>Appends the cached ids of key to output and returns true, or returns false.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryAppend(ReadOnlySpan<byte> key, int hash, List<int> output)
    {
        int slot = hash & (Slots - 1);
        while (true)
        {
            int e = slotEntry[slot] - 1;
            if (e < 0) return false;
            if (entryHash[e] == hash && keyLength[e] == key.Length && key.SequenceEqual(keys.AsSpan(keyStart[e], keyLength[e])))
            {
                int n = valueLength[e];
                if (n == 1) output.Add(values[valueStart[e]]);
                else output.AddRange(values.AsSpan(valueStart[e], n));
                return true;
            }
            slot = (slot + 1) & (Slots - 1);
        }
    }

    /// <summary>Remembers key -> ids (the caller checked it is absent).</summary>
    public void Add(ReadOnlySpan<byte> key, int hash, ReadOnlySpan<int> ids)
    {
        if (count == MaxEntries || key.Length > keys.Length / 4 || ids.Length > values.Length / 4) Clear();
        if (key.Length > keys.Length / 4 || ids.Length > values.Length / 4) return; // too long to be worth keeping
        if (keyUsed + key.Length > keys.Length || valueUsed + ids.Length > values.Length) Clear();
        int e = count++;
        entryHash[e] = hash;
        keyStart[e] = keyUsed;
        keyLength[e] = key.Length;
        key.CopyTo(keys.AsSpan(keyUsed));
        keyUsed += key.Length;
        valueStart[e] = valueUsed;
        valueLength[e] = ids.Length;
        ids.CopyTo(values.AsSpan(valueUsed));
        valueUsed += ids.Length;
        int slot = hash & (Slots - 1);
        while (slotEntry[slot] != 0) slot = (slot + 1) & (Slots - 1);
        slotEntry[slot] = e + 1;
    }

    private void Clear()
    {
        Array.Clear(slotEntry);
        count = keyUsed = valueUsed = 0;
    }
}
