// llama.cpp's importance-matrix files, read and written (tools/imatrix/imatrix.cpp and its loader):
// - GGUF (current, what llama-imatrix writes by default): general.type "imatrix", imatrix.datasets (array of
//   strings), imatrix.chunk_count and imatrix.chunk_size (u32); per matrix NAME two F32 tensors, NAME.in_sum2
//   [columns] (sums of squared inputs) and NAME.counts [1] (tokens summed). NAME.in_sum (plain sums, newer files)
//   is ignored on reading and not written.
// - legacy .dat: int32 entry count; per entry int32 name length, the name, int32 ncall, int32 value count, then the
//   values as float32 = (sum / count) * ncall, ncall = count / chunk size rounded up; then (optional) int32 chunk
//   count, int32 length and the dataset name. Readers take value / ncall as the mean, so a legacy entry is kept as
//   sums = values, count = ncall.
// The format written follows the file name: *.dat is legacy, anything else GGUF (as llama-imatrix decides).
// Every count, size and name is checked; a bad file is an InvalidFileException naming it and the field.
// Does not handle: MoE entries with one count per expert (refused by name), merging several files.
using System.Text;
using Quill.Formats.Gguf;
using Quill.Quantization;

namespace Quill.Formats;

/// <summary>Reads and writes importance matrices in llama.cpp's GGUF and legacy .dat layouts.</summary>
public static class ImatrixFile
{
    private const string SumsSuffix = ".in_sum2";
    private const string CountsSuffix = ".counts";

    /// <summary>Writes <paramref name="matrix"/> atomically: legacy .dat when the name ends in .dat, else GGUF.</summary>
    public static void Write(ImportanceMatrix matrix, string path)
    {
        ArgumentNullException.ThrowIfNull(matrix);
        ArgumentNullException.ThrowIfNull(path);
        if (path.EndsWith(".dat", StringComparison.OrdinalIgnoreCase)) WriteLegacy(matrix, path);
        else WriteGguf(matrix, path);
    }

    private static void WriteGguf(ImportanceMatrix matrix, string path)
    {
        var g = new GgufWriter()
            .SetString("general.type", "imatrix")
            .SetStringArray("imatrix.datasets", [.. matrix.Datasets])
            .SetUInt32("imatrix.chunk_count", (uint)matrix.ChunkCount)
            .SetUInt32("imatrix.chunk_size", (uint)matrix.ChunkSize);
        foreach (var (name, e) in matrix.Entries)
        {
            g.AddTensor(name + SumsSuffix, [e.Sums.Length], e.Sums);
            g.AddTensor(name + CountsSuffix, [1], new[] { (float)e.Count });
        }
        g.Write(path);
    }

    private static void WriteLegacy(ImportanceMatrix matrix, string path)
    {
        int chunk = Math.Max(1, matrix.ChunkSize);
        AtomicFile.Write(path, s =>
        {
            var w = new BinaryWriter(s, Encoding.UTF8, leaveOpen: true);
            w.Write(matrix.Entries.Count);
            foreach (var (name, e) in matrix.Entries)
            {
                byte[] n = Encoding.UTF8.GetBytes(name);
                w.Write(n.Length);
                w.Write(n);
                int ncall = (int)((e.Count + chunk - 1) / chunk);
                w.Write(ncall);
                w.Write(e.Sums.Length);
                foreach (float v in e.Sums) w.Write(e.Count > 0 ? v / e.Count * ncall : 1f);
            }
            w.Write(matrix.ChunkCount);
            byte[] ds = Encoding.UTF8.GetBytes(matrix.Datasets.Count > 0 ? matrix.Datasets[^1] : "");
            w.Write(ds.Length);
            w.Write(ds);
            w.Flush();
        });
    }

    /// <summary>Reads a GGUF or legacy .dat importance matrix (told apart by the GGUF magic).</summary>
    public static ImportanceMatrix Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        if (!File.Exists(path)) throw new InvalidFileException($"{path}: importance matrix not found.");
        uint magic = 0;
        using (var f = File.OpenRead(path))
        {
            Span<byte> b = stackalloc byte[4];
            if (f.Read(b) == 4) magic = BitConverter.ToUInt32(b);
        }
        return magic == GgufFile.Magic ? ReadGguf(path) : ReadLegacy(path);
    }

    private static ImportanceMatrix ReadGguf(string path)
    {
        using var g = GgufFile.Open(path);
        if (g.TryGetString("general.type", out string type) && type != "imatrix")
            throw new InvalidFileException($"{path}: a GGUF '{type}' file, not an importance matrix (general.type imatrix); pass the file `quill imatrix` or llama-imatrix wrote.");
        var m = new ImportanceMatrix();
        if (g.TryGetStringArray("imatrix.datasets", out var ds)) m.Datasets.AddRange(ds);
        if (g.TryGetUInt32("imatrix.chunk_count", out uint cc)) m.ChunkCount = (int)cc;
        if (g.TryGetUInt32("imatrix.chunk_size", out uint cs)) m.ChunkSize = (int)cs;
        foreach (var t in g.Tensors)
        {
            if (!t.Name.EndsWith(SumsSuffix, StringComparison.Ordinal)) continue;
            string name = t.Name[..^SumsSuffix.Length];
            if (!g.TryGetTensor(name + CountsSuffix, out var ct))
                throw new InvalidFileException($"{path}: {t.Name} has no {name + CountsSuffix} beside it.");
            if (t.Type != GgmlType.F32 || ct.Type != GgmlType.F32)
                throw new InvalidFileException($"{path}: {name}'s sums and counts must be F32 (got {t.Type} and {ct.Type}).");
            if (ct.ElementCount != 1)
                throw new InvalidFileException($"{path}: {name} has {ct.ElementCount} counts (a MoE model's experts); Quill reads one count per matrix.");
            if (t.ElementCount is < 1 or > int.MaxValue)
                throw new InvalidFileException($"{path}: {t.Name} has {t.ElementCount} values.");
            float count = g.ReadSingle(ct.Name)[0];
            if (!float.IsFinite(count) || count < 0)
                throw new InvalidFileException($"{path}: {name + CountsSuffix} is {count}; a token count must be a non-negative number.");
            float[] sums = g.ReadSingle(t.Name);
            CheckValues(path, name, sums);
            m.Set(name, sums, (long)MathF.Round(count));
        }
        if (m.Entries.Count == 0) throw new InvalidFileException($"{path}: no *.in_sum2 tensors; not an importance matrix.");
        return m;
    }

    private static ImportanceMatrix ReadLegacy(string path)
    {
        var m = new ImportanceMatrix();
        using var f = File.OpenRead(path);
        using var r = new BinaryReader(f, Encoding.UTF8);
        long length = f.Length;
        int Int(string field)
        {
            if (f.Position + 4 > length) throw new InvalidFileException($"{path}: ends inside {field} (a truncated file, or neither GGUF nor llama.cpp's legacy .dat imatrix).");
            return r.ReadInt32();
        }
        int n = Int("the entry count");
        if (n < 1 || n > 1_000_000) throw new InvalidFileException($"{path}: {n} entries; neither a GGUF nor a legacy .dat importance matrix.");
        for (int i = 0; i < n; i++)
        {
            int len = Int($"entry {i}'s name length");
            if (len < 1 || len > 4096 || f.Position + len > length)
                throw new InvalidFileException($"{path}: entry {i}'s name length {len} does not fit the file.");
            string name = Encoding.UTF8.GetString(r.ReadBytes(len));
            if (name.Any(ch => char.IsControl(ch) || ch == '\uFFFD'))
                throw new InvalidFileException($"{path}: entry {i} has no readable tensor name; neither a GGUF nor a legacy .dat importance matrix.");
            int ncall = Int($"{name}'s call count");
            int nval = Int($"{name}'s value count");
            if (nval < 1 || f.Position + 4L * nval > length)
                throw new InvalidFileException($"{path}: {name} claims {nval} values, which do not fit the file.");
            if (ncall < 0) throw new InvalidFileException($"{path}: {name} has a negative call count {ncall}.");
            var sums = new float[nval];
            for (int j = 0; j < nval; j++) sums[j] = r.ReadSingle();
            CheckValues(path, name, sums);
            m.Set(name, sums, ncall);
        }
        if (f.Position + 4 <= length)
        {
            m.ChunkCount = r.ReadInt32();
            if (f.Position + 4 <= length)
            {
                int len = r.ReadInt32();
                if (len > 0 && f.Position + len <= length) m.Datasets.Add(Encoding.UTF8.GetString(r.ReadBytes(len)));
            }
        }
        return m;
    }

    private static void CheckValues(string path, string name, float[] sums)
    {
        foreach (float v in sums)
        {
            if (!float.IsFinite(v) || v < 0)
                throw new InvalidFileException($"{path}: {name} holds {v}; sums of squares are finite and non-negative.");
        }
    }
}
