// A weight matrix as the inference engine sees it: [Rows, Cols] row-major (a PyTorch [out, in] weight; a GGUF
// tensor with ne0 = Cols, ne1 = Rows) of one element type (F32, F16, BF16 or a ggml block format), lying at a fixed
// address: inside a memory-mapped model file (no copy) or in a pinned array the loader made. It offers the three
// products decoding needs: one vector (decode, GEMV), a few vectors (batched decode, weights read once), and
// many rows (prefill, GEMM: F32 straight from the mapping; block formats through QuantGemm's integer GEMM with the
// activations quantized as llama.cpp does, or, for training's exact gradients and on x86 CPUs without AVX2, dequantized
// a panel of rows at a time for SGEMM).
// ConvertTo re-encodes one in another type row by row (a QLoRA base quantized in memory). WithUpdates views the same
// weights with LoRA updates beside them (a PEFT adapter run unmerged: y += scaling (x A^T) B^T after each product).
// Does not own the memory it points at: the InferenceModel that built it keeps the file mapped or the array alive.
// Glossary: R rows (outputs), K cols (inputs), M vectors / rows of activations.
using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using Quill.Kernels;
using Quill.Quantization;

namespace Quill.Tensors;

/// <summary>A row-major weight matrix of any supported element type, viewed in place.</summary>
public sealed unsafe class WeightMatrix
{
    /// <summary>At or below this many activation rows, products run as matrix-vector kernels, never GEMM.</summary>
    public const int SmallM = 8;

    private readonly object? keepAlive;

    /// <summary>Views rows x cols values of <paramref name="type"/> at <paramref name="address"/>.</summary>
    /// <param name="name">Tensor name, for messages.</param>
    /// <param name="type">Element type; anything Quantization cannot convert raises a QuillException.</param>
    /// <param name="address">First byte; must stay valid while the matrix is used.</param>
    /// <param name="rows">Output rows.</param>
    /// <param name="cols">Values per row.</param>
    /// <param name="keepAlive">Object that owns the memory (a pinned array), kept reachable by this view.</param>
    public WeightMatrix(string name, GgmlType type, nint address, int rows, int cols, object? keepAlive = null)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (!GgmlQuant.IsSupported(type))
            throw new QuillException($"tensor {name} has type {type}, which Quill cannot run (supported: {string.Join(", ", GgmlQuant.SupportedTypes)}); re-quantize the model to one of those.");
        if (rows < 1 || cols < 1) throw new InvalidFileException($"tensor {name} has shape [{rows}, {cols}]; a weight matrix needs both dims positive.");
        if (cols % GgmlTypeInfo.BlockSize(type) != 0)
            throw new InvalidFileException($"tensor {name}: row length {cols} is not a multiple of the {type} block size {GgmlTypeInfo.BlockSize(type)}.");
        Name = name;
        Type = type;
        Address = address;
        Rows = rows;
        Cols = cols;
        RowBytes = GgmlTypeInfo.RowBytes(type, cols);
        this.keepAlive = keepAlive;
    }

    /// <summary>A float matrix in a new pinned array (the engine's own copy: transposed or fused weights, tests).</summary>
    public static WeightMatrix FromFloats(string name, ReadOnlySpan<float> values, int rows, int cols)
    {
        if (values.Length != (long)rows * cols) throw new ArgumentException($"{name}: {values.Length} values for [{rows}, {cols}].", nameof(values));
        float[] data = GC.AllocateUninitializedArray<float>(values.Length, pinned: true);
        values.CopyTo(data);
        return new WeightMatrix(name, GgmlType.F32, (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(data)), rows, cols, data);
    }

    /// <summary>
    /// A view of a contiguous rank-2 tensor's memory, no copy: an owned f32 tensor's pinned storage (the tensor's
    /// values as they change) or a foreign tensor of any type (a mapped or quantized weight).
    /// </summary>
    public static WeightMatrix View(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        if (t.Rank != 2 || !t.IsContiguous) throw new ArgumentException($"{t.Name}: a weight matrix view needs a contiguous rank-2 tensor, not {Tensor.Describe(t.Shape)}.", nameof(t));
        if (t.IsForeign) return new WeightMatrix(t.Name, t.DType, t.Address, t.Dim(0), t.Dim(1), t);
        float[] storage = t.Storage;
        nint address = (nint)Unsafe.AsPointer(ref storage[t.Offset]);
        return new WeightMatrix(t.Name, GgmlType.F32, address, t.Dim(0), t.Dim(1), storage);
    }

    /// <summary>This matrix as a [Rows, Cols] tensor of its element type over the same memory (no copy), e.g. a frozen weight for LinearOp.</summary>
    public Tensor AsTensor() => Tensor.FromMemory(Address, Type, [Rows, Cols], (object?)keepAlive ?? this);

    /// <summary>Quantizes a float matrix into <paramref name="type"/> (a new pinned buffer): for benchmarks and tests.</summary>
    public static WeightMatrix Quantize(string name, ReadOnlySpan<float> values, int rows, int cols, GgmlType type)
    {
        if (type == GgmlType.F32) return FromFloats(name, values, rows, cols);
        long rowBytes = GgmlTypeInfo.RowBytes(type, cols);
        byte[] data = GC.AllocateUninitializedArray<byte>(checked((int)(rowBytes * rows)), pinned: true);
        fixed (float* pv = values)
        {
            nint va = (nint)pv;
            KernelThreads.ParallelFor(rows, 64, (r0, r1) =>
            {
                for (int r = r0; r < r1; r++)
                    GgmlQuant.Quantize(type, new ReadOnlySpan<float>((float*)va + (long)r * cols, cols), data.AsSpan((int)(r * rowBytes), (int)rowBytes));
            });
        }
        return new WeightMatrix(name, type, (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(data)), rows, cols, data);
    }

    /// <summary>
    /// This matrix converted to <paramref name="type"/> in a new pinned buffer, row by row (a row of floats at a time
    /// per thread, never a full f32 copy): a QLoRA base quantized in memory. Rows must be whole blocks of the type.
    /// </summary>
    public WeightMatrix ConvertTo(GgmlType type)
    {
        if (!GgmlQuant.IsSupported(type)) throw new QuillException($"{Name}: type {type} is not one Quill runs (supported: {string.Join(", ", GgmlQuant.SupportedTypes)}).");
        if (Cols % GgmlTypeInfo.BlockSize(type) != 0) throw new ArgumentException($"{Name}: rows of {Cols} values are not whole {type} blocks.", nameof(type));
        long rowBytes = GgmlTypeInfo.RowBytes(type, Cols);
        byte[] data = GC.AllocateUninitializedArray<byte>(checked((int)(rowBytes * Rows)), pinned: true);
        KernelThreads.ParallelFor(Rows, 16, (r0, r1) =>
        {
            float[] row = System.Buffers.ArrayPool<float>.Shared.Rent(Cols);
            try
            {
                for (int r = r0; r < r1; r++)
                {
                    ReadRow(r, row);
                    GgmlQuant.Quantize(type, row.AsSpan(0, Cols), data.AsSpan((int)(r * rowBytes), (int)rowBytes));
                }
            }
            finally
            {
                System.Buffers.ArrayPool<float>.Shared.Return(row);
            }
        });
        return new WeightMatrix(Name, type, (nint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(data)), Rows, Cols, data);
    }

    public string Name { get; }

    public GgmlType Type { get; }

    /// <summary>Address of the first byte.</summary>
    public nint Address { get; }

    public int Rows { get; }

    public int Cols { get; }

    /// <summary>Bytes of one row.</summary>
    public long RowBytes { get; }

    /// <summary>Bytes of the whole matrix: what one decode step reads.</summary>
    public long ByteSize => RowBytes * Rows;

    /// <summary>The raw bytes (matrices under 2 GiB).</summary>
    public ReadOnlySpan<byte> Bytes => new((void*)Address, checked((int)ByteSize));

    /// <summary>The values as floats when the type is F32 (matrices under 2^31 values).</summary>
    public ReadOnlySpan<float> Floats => Type == GgmlType.F32
        ? new((void*)Address, checked(Rows * Cols))
        : throw new InvalidOperationException($"{Name} is {Type}, not F32.");

    /// <summary>Rows [first, first + count) as a matrix of their own, without copying (fused tensors split apart).</summary>
    public WeightMatrix SliceRows(string name, int first, int count)
    {
        if (first < 0 || count < 1 || first + count > Rows) throw new InvalidFileException($"{Name}: rows [{first}, {first + count}) are outside its {Rows} rows.");
        return new WeightMatrix(name, Type, Address + (nint)(first * RowBytes), count, Cols, keepAlive);
    }

    /// <summary>The LoRA updates added after each product (none: the plain weights).</summary>
    internal IReadOnlyList<LowRankUpdate> Updates { get; private init; } = [];

    /// <summary>
    /// The same weights, viewed where they lie (nothing copied, the type kept), with <paramref name="updates"/> added
    /// after every Multiply and MultiplyMany: a LoRA adapter run unmerged.
    /// </summary>
    internal WeightMatrix WithUpdates(IReadOnlyList<LowRankUpdate> updates)
    {
        foreach (var u in updates)
        {
            if (u.Cols != Cols || u.Row0 < 0 || u.Row0 + u.Rows > Rows)
                throw new InvalidFileException($"{Name}: a rank-{u.Rank} update of rows [{u.Row0}, {u.Row0 + u.Rows}) and {u.Cols} inputs does not fit its [{Rows}, {Cols}]; the adapter was made for another model.");
        }
        return new WeightMatrix(Name, Type, Address, Rows, Cols, this) { Updates = [.. Updates, .. updates] };
    }

    /// <summary>
    /// y[:, Row0 .. Row0 + Rows) += Scaling (x A^T) B^T for each update: through the thin GEMM (r rows) for a prompt,
    /// in plain loops for decode's few rows (two GEMM calls a matrix cost more than the work on small models).
    /// </summary>
    private void ApplyUpdates(float* x, int ldx, int m, float* y, int ldy)
    {
        foreach (var u in Updates)
        {
            if (m <= SmallM)
            {
                UpdateFew(u, x, ldx, m, y, ldy);
                continue;
            }
            float[] ut = ArrayPool<float>.Shared.Rent(u.Rank * m);
            try
            {
                var xs = new ReadOnlySpan<float>(x, (m - 1) * ldx + Cols);
                Gemm.Sgemm(false, true, u.Rank, m, Cols, 1f, u.A, Cols, xs, ldx, 0f, ut, m);                   // ut [r, m] = A x^T
                var ys = new Span<float>(y + u.Row0, (m - 1) * ldy + u.Rows);
                Gemm.Sgemm(true, true, m, u.Rows, u.Rank, u.Scaling, ut, m, u.B, u.Rank, 1f, ys, ldy);          // y += s ut^T B^T
            }
            finally
            {
                ArrayPool<float>.Shared.Return(ut);
            }
        }
    }

    /// <summary>ApplyUpdates for a few rows: u = s A x (r dots), then y_blk += B u, row by row.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void UpdateFew(LowRankUpdate u, float* x, int ldx, int m, float* y, int ldy)
    {
        float[] scaled = ArrayPool<float>.Shared.Rent(u.Rank);
        try
        {
            for (int i = 0; i < m; i++)
            {
                float* xi = x + (long)i * ldx;
                fixed (float* a = u.A)
                {
                    for (int j = 0; j < u.Rank; j++) scaled[j] = u.Scaling * AttentionPack.Dot(a + (long)j * Cols, xi, Cols);
                }
                float* yi = y + (long)i * ldy + u.Row0;
                for (int o = 0; o < u.Rows; o++)
                {
                    float acc = 0f;
                    for (int j = 0; j < u.Rank; j++) acc += u.B[o * u.Rank + j] * scaled[j];
                    yi[o] += acc;
                }
            }
        }
        finally
        {
            ArrayPool<float>.Shared.Return(scaled);
        }
    }

    /// <summary>Row r as floats (dequantized). dst: [Cols]</summary>
    public void ReadRow(int r, Span<float> dst)
    {
        if ((uint)r >= (uint)Rows) throw new ArgumentOutOfRangeException(nameof(r), $"row {r} of {Name} not in [0, {Rows}).");
        GgmlQuant.Dequantize(Type, new ReadOnlySpan<byte>((byte*)Address + r * RowBytes, (int)RowBytes), dst[..Cols]);
    }

    /// <summary>The whole matrix as floats (a copy), for tests and conversions.</summary>
    public float[] ToFloats()
    {
        var all = new float[(long)Rows * Cols];
        for (int r = 0; r < Rows; r++) ReadRow(r, all.AsSpan(r * Cols, Cols));
        return all;
    }

    /// <summary>
    /// y[m] = W x[m] for m rows of activations: x [m, Cols] with rows ldx apart, y [m, Rows] with rows ldy apart
    /// (so y may be a column slice of a wider buffer). m &lt;= <see cref="SmallM"/> runs matrix-vector kernels;
    /// larger m runs GEMM: for block formats the integer GEMM (activations quantized as llama.cpp does), unless
    /// <paramref name="floatActivations"/> asks for dequantize + SGEMM (training: the forward whose exact gradient
    /// LinearOp's backward computes).
    /// </summary>
    internal void Multiply(float* x, int ldx, int m, float* y, int ldy, bool floatActivations = false)
    {
        if (m <= 0) return;
        if (m <= SmallM) MultiplySmall(x, ldx, m, y, ldy);
        else MultiplyLarge(x, ldx, m, y, ldy, floatActivations);
        if (Updates.Count > 0) ApplyUpdates(x, ldx, m, y, ldy);
    }

    /// <summary>
    /// Several matrices with the same input (q, k, v or gate, up) in one pass: F32 and integer-kernel matrices of one
    /// type share one parallel region (and the integer ones one quantized input) in the matrix-vector path; anything
    /// else runs one by one. x: [m, Cols] rows ldx apart; ys[i]: [m, Rows_i].
    /// </summary>
    internal static void MultiplyMany(ReadOnlySpan<WeightMatrix> ws, float* x, int ldx, int m, ReadOnlySpan<nint> ys, ReadOnlySpan<int> ldys)
    {
        MultiplyManyBase(ws, x, ldx, m, ys, ldys);
        for (int i = 0; i < ws.Length; i++)
        {
            if (ws[i].Updates.Count > 0 && m > 0) ws[i].ApplyUpdates(x, ldx, m, (float*)ys[i], ldys[i]);
        }
    }

    private static void MultiplyManyBase(ReadOnlySpan<WeightMatrix> ws, float* x, int ldx, int m, ReadOnlySpan<nint> ys, ReadOnlySpan<int> ldys)
    {
        bool same = m <= SmallM;
        foreach (var w in ws) same &= w.Type == ws[0].Type && w.Cols == ws[0].Cols;
        if (same && QuantDot.HasIntegerPath(ws[0].Type))
        {
            Span<nint> qa = stackalloc nint[ws.Length];
            Span<int> qr = stackalloc int[ws.Length];
            Span<nint> qy = stackalloc nint[ws.Length];
            for (int i = 0; i < ws.Length; i++)
            {
                qa[i] = ws[i].Address;
                qr[i] = ws[i].Rows;
            }
            for (int i = 0; i < ws.Length; i++) qy[i] = ys[i];
            if (m == 1) QuantDot.MatVecMany(ws[0].Type, qa, qr, ws[0].Cols, x, qy);
            else QuantDot.MatVecBatch(ws[0].Type, qa, qr, ws[0].Cols, x, ldx, m, qy, ldys); // weights read once for all m
            return;
        }
        if (m > SmallM && ws[0].UsesIntegerGemm)
        {
            // many rows: one quantization of x for every matrix of the same activation flavor and width
            var flavor = QuantGemm.FlavorOf(ws[0].Type);
            bool shared = true;
            foreach (var w in ws) shared &= w.UsesIntegerGemm && QuantGemm.FlavorOf(w.Type) == flavor && w.Cols == ws[0].Cols;
            if (shared)
            {
                var xq = QuantGemm.Rows.Quantize(flavor, x, ldx, m, ws[0].Cols);
                for (int i = 0; i < ws.Length; i++) ws[i].MultiplyQuantized(xq, (float*)ys[i], ldys[i]);
                return;
            }
        }
        bool fused = same && ldx == ws[0].Cols && ws[0].Type == GgmlType.F32;
        if (!fused)
        {
            for (int i = 0; i < ws.Length; i++)
            {
                if (m <= SmallM) ws[i].MultiplySmall(x, ldx, m, (float*)ys[i], ldys[i]);
                else ws[i].MultiplyLarge(x, ldx, m, (float*)ys[i], ldys[i], floatActivations: false);
            }
            return;
        }
        Span<nint> addr = stackalloc nint[ws.Length];
        Span<int> rows = stackalloc int[ws.Length];
        for (int i = 0; i < ws.Length; i++)
        {
            addr[i] = ws[i].Address;
            rows[i] = ws[i].Rows;
        }
        Gemv.RunMany(addr, rows, ws[0].Cols, x, m, ys, ldys);
    }

    // 0: not scanned yet; 1: no F16 value is an infinity or NaN (Gemv's cheaper widening applies); 2: some is.
    // Scanned once, on first use (weights do not change under a view; a race only scans twice).
    private int halvesFinite;

    private bool HalvesFinite
    {
        get
        {
            if (halvesFinite == 0)
            {
                // rows split over the kernel threads: the first token of a large F16 model scans every matrix once
                int found = 0;
                nint address = Address;
                int cols = Cols;
                KernelThreads.ParallelFor(Rows, Math.Max(1, (1 << 20) / cols), (r0, r1) =>
                {
                    if (!Fp16.AllFinite((ushort*)address + (long)r0 * cols, (long)(r1 - r0) * cols)) Volatile.Write(ref found, 1);
                });
                halvesFinite = found == 0 ? 1 : 2;
            }
            return halvesFinite == 1;
        }
    }

    private void MultiplySmall(float* x, int ldx, int m, float* y, int ldy)
    {
        if (Type == GgmlType.F32)
        {
            if (ldx == Cols)
            {
                Gemv.Run(GemvWidth.Auto, (float*)Address, Rows, Cols, x, m, y, ldy, 0);
                return;
            }
            for (int v = 0; v < m; v++) Gemv.Run(GemvWidth.Auto, (float*)Address, Rows, Cols, x + (long)v * ldx, 1, y + (long)v * ldy, ldy, 0);
            return;
        }
        if (Type is GgmlType.F16 or GgmlType.BF16)
        {
            bool finite = Type == GgmlType.F16 && HalvesFinite;
            Gemv.RunHalfBatch(Type == GgmlType.BF16, (ushort*)Address, Rows, Cols, x, ldx, m, y, ldy, GemvWidth.Auto, finite); // weights read once for all m
            return;
        }
        if (m > 1 && QuantDot.HasIntegerPath(Type))
        {
            // the weights read once for all m vectors
            QuantDot.MatVecBatch(Type, [Address], [Rows], Cols, x, ldx, m, [(nint)y], [ldy]);
            return;
        }
        for (int v = 0; v < m; v++) QuantDot.MatVec(Type, (byte*)Address, Rows, Cols, x + (long)v * ldx, y + (long)v * ldy);
    }

    private void MultiplyLarge(float* x, int ldx, int m, float* y, int ldy, bool floatActivations)
    {
        var xs = new ReadOnlySpan<float>(x, (m - 1) * ldx + Cols);
        var ys = new Span<float>(y, (m - 1) * ldy + Rows);
        if (Type == GgmlType.F32)
        {
            Gemm.Sgemm(false, true, m, Rows, Cols, 1f, xs, ldx, Floats, Cols, 0f, ys, ldy);
            return;
        }
        if (UsesIntegerGemm && !floatActivations)
        {
            // the activation rows quantized once (ggml's rules), then integer block dots: llama.cpp's arithmetic
            MultiplyQuantized(QuantGemm.Rows.Quantize(QuantGemm.FlavorOf(Type), x, ldx, m, Cols), y, ldy);
            return;
        }
        // y[:, r0:r0+n] = x W[r0:r0+n]^T, one dequantized panel of rows at a time
        nint xa = (nint)x, ya = (nint)y;
        ForEachPanel((r0, n, panel) => Gemm.Sgemm(false, true, m, n, Cols, 1f, new ReadOnlySpan<float>((float*)xa, (m - 1) * ldx + Cols), ldx,
            panel, Cols, 0f, new Span<float>((float*)ya + r0, (m - 1) * ldy + n), ldy));
    }

    /// <summary>True when products of many rows run as QuantGemm's integer GEMM (block formats; AVX2 or ARM64 CPUs).</summary>
    internal bool UsesIntegerGemm => QuantGemm.Enabled && QuantDot.HasIntegerPath(Type);

    private void MultiplyQuantized(QuantGemm.Rows x, float* y, int ldy) => QuantGemm.Multiply(Type, (byte*)Address, Rows, RowBytes, x, y, ldy);

    private delegate void PanelAction(int firstRow, int rows, ReadOnlySpan<float> panel);

    /// <summary>Dequantizes the matrix a panel of rows (about 256 KiB of floats) at a time, rows split across threads, and hands each panel [rows, Cols] to action.</summary>
    private void ForEachPanel(PanelAction action)
    {
        int panel = Math.Min(Rows, Math.Max(64, 262144 / Cols));
        float[] buf = System.Buffers.ArrayPool<float>.Shared.Rent(panel * Cols);
        try
        {
            fixed (float* pb = buf)
            {
                nint bufAddr = (nint)pb;
                for (int r0 = 0; r0 < Rows; r0 += panel)
                {
                    int n = Math.Min(panel, Rows - r0), baseRow = r0;
                    KernelThreads.ParallelFor(n, 8, (a, b) =>
                    {
                        for (int r = a; r < b; r++)
                            GgmlQuant.Dequantize(Type, new ReadOnlySpan<byte>((byte*)Address + (baseRow + r) * RowBytes, (int)RowBytes), new Span<float>((float*)bufAddr + (long)r * Cols, Cols));
                    });
                    action(r0, n, buf.AsSpan(0, n * Cols));
                }
            }
        }
        finally
        {
            System.Buffers.ArrayPool<float>.Shared.Return(buf);
        }
    }

    /// <summary>
    /// dx[m] (+)= dy[m] W for m rows: dy [m, Rows] rows lddy apart, dx [m, Cols] rows lddx apart; accumulate adds to
    /// dx, else overwrites it. Any element type: a panel of rows (about 256 KiB of floats) is dequantized at a time
    /// and multiplied with GEMM, so a frozen quantized weight passes gradients to its input without a full copy.
    /// </summary>
    internal void MultiplyTransposed(float* dy, int lddy, int m, float* dx, int lddx, bool accumulate)
    {
        if (m <= 0) return;
        var dys = new ReadOnlySpan<float>(dy, (m - 1) * lddy + Rows);
        var dxs = new Span<float>(dx, (m - 1) * lddx + Cols);
        if (Type == GgmlType.F32)
        {
            Gemm.Sgemm(false, false, m, Cols, Rows, 1f, dys, lddy, Floats, Cols, accumulate ? 1f : 0f, dxs, lddx);
            return;
        }
        // dx [m, Cols] += dy[:, r0:r0+n] [m, n] W[r0:r0+n] [n, Cols], one dequantized panel at a time
        nint dya = (nint)dy, dxa = (nint)dx;
        ForEachPanel((r0, n, panel) => Gemm.Sgemm(false, false, m, Cols, n, 1f, new ReadOnlySpan<float>((float*)dya + r0, (m - 1) * lddy + n), lddy,
            panel, Cols, accumulate || r0 > 0 ? 1f : 0f, new Span<float>((float*)dxa, (m - 1) * lddx + Cols), lddx));
    }

    public override string ToString() => $"{Name} {Type} [{Rows}, {Cols}]";
}

/// <summary>
/// A LoRA update of a weight matrix's rows [Row0, Row0 + Rows): y[:, Row0 ..] += Scaling (x A^T) B^T, with A [Rank, Cols]
/// and B [Rows, Rank] row-major f32 (PEFT's lora_A and lora_B in Quill's row order; a q, k or v adapter on a fused
/// q|k|v matrix covers its block of rows).
/// </summary>
internal sealed class LowRankUpdate(float[] a, float[] b, int rank, int cols, int row0, int rows, float scaling)
{
    public float[] A { get; } = a.Length == rank * cols ? a : throw new ArgumentException($"A holds {a.Length} floats, not {rank} x {cols}.", nameof(a));

    public float[] B { get; } = b.Length == rows * rank ? b : throw new ArgumentException($"B holds {b.Length} floats, not {rows} x {rank}.", nameof(b));

    public int Rank { get; } = rank;

    public int Cols { get; } = cols;

    public int Row0 { get; } = row0;

    public int Rows { get; } = rows;

    public float Scaling { get; } = scaling;
}
