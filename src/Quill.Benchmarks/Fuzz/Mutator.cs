// Seeded mutations of a valid file, the kinds that break loaders: truncation, byte flips, an integer field set to
// 0 / -1 / huge / INT_MIN (at the offsets of the GGUF header's counts, lengths, dimensions, types and offsets when the
// file is GGUF, else at 4-byte slots near the start), a run of digits in text (JSON counts, tiktoken ranks, the
// safetensors header) replaced by an extreme number, and invalid UTF-8 spliced into text.
// The same (file, seed) always gives the same mutant, so a failure is reproduced from its seed alone.
using System.Buffers.Binary;
using System.Text;

namespace Quill.Benchmarks.Fuzz;

/// <summary>One mutated file and how it was made.</summary>
public sealed record Mutant(byte[] Bytes, string Description);

/// <summary>Makes seeded mutants of a file's bytes.</summary>
public static class Mutator
{
    private static readonly long[] Extremes = [0, -1, 1, int.MaxValue, int.MinValue, uint.MaxValue, long.MaxValue, long.MinValue, 1L << 40, 0x7FFF_FFF0];
    private static readonly string[] ExtremeTexts = ["0", "-1", "2147483647", "-2147483648", "4294967296", "99999999999999999999", "1e308", "-0", "300000000"];

    /// <summary>The mutant number <paramref name="index"/> of <paramref name="original"/> under <paramref name="seed"/>.</summary>
    public static Mutant Make(byte[] original, int seed, int index)
    {
        ArgumentNullException.ThrowIfNull(original);
        var rng = new Random(unchecked(seed * 1_000_003 + index)); // not HashCode: that is randomized per process
        int kind = rng.Next(5);
        return kind switch
        {
            0 => Truncate(original, rng),
            1 => Flip(original, rng),
            2 => IntegerField(original, rng),
            3 => Digits(original, rng) ?? IntegerField(original, rng),
            _ => BadUtf8(original, rng),
        };
    }

    private static int Near(Random rng, int length)
    {
        // Half the positions fall in the first 4 KiB, where headers are.
        int span = rng.Next(2) == 0 ? Math.Min(length, 4096) : length;
        return rng.Next(Math.Max(span, 1));
    }

    private static Mutant Truncate(byte[] b, Random rng)
    {
        int n = Near(rng, b.Length);
        return new(b.AsSpan(0, n).ToArray(), $"truncated to {n} of {b.Length} bytes");
    }

    private static Mutant Flip(byte[] b, Random rng)
    {
        var m = (byte[])b.Clone();
        int count = 1 + rng.Next(8);
        var at = new List<int>();
        for (int i = 0; i < count && m.Length > 0; i++)
        {
            int p = Near(rng, m.Length);
            m[p] ^= (byte)(1 << rng.Next(8));
            at.Add(p);
        }
        return new(m, $"bit flips at {string.Join(",", at)}");
    }

    private static Mutant IntegerField(byte[] b, Random rng)
    {
        var m = (byte[])b.Clone();
        var fields = GgufFields(b);
        (int offset, int width) field;
        if (fields.Count > 0 && rng.Next(4) != 0) field = fields[rng.Next(fields.Count)];
        else
        {
            // half the time one of the first 16 slots, where fixed headers (llama2.c's seven ints) keep their counts
            int slots = Math.Max(1, Math.Min(m.Length, rng.Next(2) == 0 ? 64 : 1024) / 4);
            field = (rng.Next(slots) * 4, rng.Next(3) == 0 ? 8 : 4);
        }
        long value = Extremes[rng.Next(Extremes.Length)];
        if (field.offset + field.width > m.Length) return Truncate(b, rng);
        if (field.width == 8) BinaryPrimitives.WriteInt64LittleEndian(m.AsSpan(field.offset), value);
        else BinaryPrimitives.WriteInt32LittleEndian(m.AsSpan(field.offset), unchecked((int)value));
        return new(m, $"{field.width}-byte field at {field.offset} set to {value}");
    }

    private static Mutant? Digits(byte[] b, Random rng)
    {
        int limit = Math.Min(b.Length, 1 << 16);
        var runs = new List<(int Start, int Length)>();
        for (int i = 0; i < limit;)
        {
            if (b[i] is >= (byte)'0' and <= (byte)'9' && (i == 0 || !IsWordByte(b[i - 1])))
            {
                int j = i;
                while (j < limit && b[j] is >= (byte)'0' and <= (byte)'9') j++;
                runs.Add((i, j - i));
                i = j;
            }
            else i++;
        }
        if (runs.Count == 0) return null;
        var (start, length) = runs[rng.Next(runs.Count)];
        string text = ExtremeTexts[rng.Next(ExtremeTexts.Length)];
        byte[] repl = Encoding.ASCII.GetBytes(text);
        var m = new byte[b.Length - length + repl.Length];
        b.AsSpan(0, start).CopyTo(m);
        repl.CopyTo(m.AsSpan(start));
        b.AsSpan(start + length).CopyTo(m.AsSpan(start + repl.Length));
        return new(m, $"number at {start} ({Encoding.ASCII.GetString(b, start, length)}) set to {text}");
    }

    private static bool IsWordByte(byte c) => c is >= (byte)'a' and <= (byte)'z' or >= (byte)'A' and <= (byte)'Z' or (byte)'_';

    private static Mutant BadUtf8(byte[] b, Random rng)
    {
        byte[][] bad = [[0xFF], [0xC3, 0x28], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82]];
        byte[] ins = bad[rng.Next(bad.Length)];
        int p = Near(rng, b.Length);
        var m = new byte[b.Length + ins.Length];
        b.AsSpan(0, p).CopyTo(m);
        ins.CopyTo(m.AsSpan(p));
        b.AsSpan(p).CopyTo(m.AsSpan(p + ins.Length));
        return new(m, $"invalid UTF-8 {Convert.ToHexString(ins)} inserted at {p}");
    }

    /// <summary>
    /// Offsets and widths of the integer fields of a GGUF file's header, metadata and tensor infos (counts, string
    /// lengths, value types, array lengths, integer values, tensor ranks, dimensions, types and offsets); empty
    /// when the file is not GGUF. Walks the structure as far as it is intact.
    /// </summary>
    public static List<(int Offset, int Width)> GgufFields(byte[] b)
    {
        var fields = new List<(int, int)>();
        if (b.Length < 24 || b[0] != 'G' || b[1] != 'G' || b[2] != 'U' || b[3] != 'F') return fields;
        int p = 4;
        bool Take(int width)
        {
            if (p + width > b.Length) return false;
            fields.Add((p, width));
            p += width;
            return true;
        }
        bool String()
        {
            if (p + 8 > b.Length) return false;
            long n = BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(p));
            fields.Add((p, 8));
            p += 8;
            if (n < 0 || p + n > b.Length) return false;
            p += (int)n;
            return true;
        }
        bool Value(uint type)
        {
            int[] widths = [1, 1, 2, 2, 4, 4, 4, 1, -1, -2, 8, 8, 8];
            if (type >= widths.Length) return false;
            int w = widths[type];
            if (w > 0) return Take(w);
            if (w == -1) return String();
            if (p + 12 > b.Length) return false;
            uint inner = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(p));
            Take(4);
            long count = BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(p));
            Take(8);
            if (count is < 0 or > 1 << 20) return false;
            for (long i = 0; i < count; i++)
            {
                // record only the first few elements' fields: a 32,000-token vocabulary would drown the rest
                int before = fields.Count;
                if (!Value(inner)) return false;
                if (i >= 4) fields.RemoveRange(before, fields.Count - before);
            }
            return true;
        }
        if (!Take(4)) return fields;
        if (p + 16 > b.Length) return fields;
        long tensors = BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(p));
        Take(8);
        long kvs = BinaryPrimitives.ReadInt64LittleEndian(b.AsSpan(p));
        Take(8);
        if (tensors is < 0 or > 1 << 16 || kvs is < 0 or > 1 << 16) return fields;
        for (long i = 0; i < kvs; i++)
        {
            if (!String() || p + 4 > b.Length) return fields;
            uint type = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(p));
            Take(4);
            if (!Value(type)) return fields;
        }
        for (long i = 0; i < tensors; i++)
        {
            if (!String() || p + 4 > b.Length) return fields;
            uint dims = BinaryPrimitives.ReadUInt32LittleEndian(b.AsSpan(p));
            Take(4);
            if (dims > 8) return fields;
            for (int d = 0; d < dims; d++) if (!Take(8)) return fields;
            if (!Take(4) || !Take(8)) return fields;
        }
        return fields;
    }
}
