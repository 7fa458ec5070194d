// Tests for AttentionMask in the attention kernels: sliding windows, document boundaries of packed rows and the
// score soft-cap. Optimized kernels against the reference twin (every width, one and two threads, windows shorter
// and longer than a key block, rows longer than a query block); the reference backward against finite
// differences; both against a PyTorch fixture (make_masked_attention_fixture.py); cached decode with a window
// against the full masked forward past the window; AttentionOp over packed documents equal to each document run
// as a row of its own (RoPE positions restarting), forward and gradients.
// Glossary: B batch, T sequence length, Hq query heads, Hkv kv heads, D head size, W window.
using System.Text.Json;
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Tests.Kernels;

public partial class AttentionTests
{
    public static TheoryData<int, int, int, int, int, int, bool, float> MaskCases => new()
    {
        // B, T, Hq, Hkv, D, window, documents, softcap
        { 1, 9, 2, 1, 8, 3, false, 0f },
        { 2, 37, 4, 2, 16, 0, true, 0f },
        { 1, 70, 2, 2, 20, 7, false, 2f },
        { 2, 130, 4, 2, 16, 33, true, 0f },
        { 1, 150, 2, 1, 33, 70, false, 0.8f },
        { 2, 67, 2, 2, 8, 0, false, 1f },
    };

    private static AttentionMask MakeMask(int B, int T, int window, bool documents, float softcap, int seed)
    {
        if (!documents) return AttentionMask.Create(window, softcap);
        var rng = new Random(seed);
        var seg = new int[B * T];
        for (int b = 0; b < B; b++)
        {
            int id = 0;
            for (int i = 0; i < T; i++)
            {
                if (i > 0 && rng.Next(9) == 0) id++;
                seg[b * T + i] = id;
            }
        }
        return AttentionMask.Documents(AttentionMask.StartsFromSegments(seg, B, T), B, T, window, softcap);
    }

    [Theory]
    [MemberData(nameof(MaskCases))]
    public void Masked_optimized_matches_reference(int B, int T, int Hq, int Hkv, int D, int window, bool documents, float softcap)
    {
        var x = Inputs.Random(B, T, Hq, Hkv, D, fused: documents, seed: T * 7 + window);
        var mask = MakeMask(B, T, window, documents, softcap, seed: T);
        float scale = 1.3f / MathF.Sqrt(D);
        var oRef = new float[B * T * Hq * D];
        var lseRef = new float[B * Hq * T];
        AttentionReference.Forward(B, T, Hq, Hkv, D, scale, x.Q.Span, x.QStride, x.K.Span, x.KStride, x.V.Span, x.VStride, oRef, lseRef, mask);
        var (dqRef, dkRef, dvRef) = x.GradBuffers();
        AttentionReference.Backward(B, T, Hq, Hkv, D, scale, x.Q.Span, x.QStride, x.K.Span, x.KStride, x.V.Span, x.VStride,
            oRef, lseRef, x.DO, dqRef.Span, dkRef.Span, dvRef.Span, mask);
        foreach (var width in Widths())
        {
            foreach (int threads in new[] { 1, 2 })
            {
                string what = $"{width}, {threads} thread(s), window {window}, documents {documents}, cap {softcap}";
                var o = new float[oRef.Length];
                var lse = new float[lseRef.Length];
                Attention.ForwardCore(B, T, Hq, Hkv, D, scale, x.Q.Span, x.QStride, x.K.Span, x.KStride, x.V.Span, x.VStride, o, lse, threads, width, mask);
                AssertClose(oRef, o, 1e-4, 1e-5, "o " + what);
                AssertClose(lseRef, lse, 1e-5, 1e-5, "lse " + what);
                var (dq, dk, dv) = x.GradBuffers();
                Attention.BackwardCore(B, T, Hq, Hkv, D, scale, x.Q.Span, x.QStride, x.K.Span, x.KStride, x.V.Span, x.VStride,
                    o, lse, x.DO, dq.Span, dk.Span, dv.Span, threads, width, mask);
                AssertClose(dqRef.Span, dq.Span, 2e-4, 2e-5, "dq " + what);
                AssertClose(dkRef.Span, dk.Span, 2e-4, 2e-5, "dk " + what);
                AssertClose(dvRef.Span, dv.Span, 2e-4, 2e-5, "dv " + what);
                x.AssertPaddingUntouched(dq, dk, dv);
            }
        }
    }

    [Fact]
    public void A_window_changes_the_result_and_a_window_as_long_as_the_row_does_not()
    {
        const int B = 1, T = 40, H = 2, D = 8;
        var x = Inputs.Random(B, T, H, H, D, fused: false, seed: 3);
        float[] Run(AttentionMask? m)
        {
            var o = new float[B * T * H * D];
            Attention.Forward(B, T, H, H, D, 0.5f, x.Q.Span, x.QStride, x.K.Span, x.KStride, x.V.Span, x.VStride, o, new float[B * H * T], m);
            return o;
        }
        float[] full = Run(null), wide = Run(AttentionMask.Create(window: T)), narrow = Run(AttentionMask.Create(window: 4));
        Assert.Equal(full, wide);
        // rows 0..3 see the same keys either way; row 4 onward lose their oldest keys
        AssertClose(full.AsSpan(0, 4 * H * D), narrow.AsSpan(0, 4 * H * D), 1e-6, 1e-7, "rows inside the window");
        Assert.True(Math.Abs(full[5 * H * D] - narrow[5 * H * D]) > 1e-4, "a row past the window sees fewer keys");
    }

    [Fact]
    public void Masked_reference_backward_matches_finite_differences()
    {
        // two rows, 7 tokens: documents of 3 and 4 in the first, 5 and 2 in the second; window 3; soft-cap 0.9
        int[] starts = AttentionMask.StartsFromSegments([0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 2, 2], 2, 7);
        CheckReferenceBackward(2, 7, 2, 1, 3, seed: 9, scale: 0.7f, AttentionMask.Documents(starts, 2, 7, window: 3, softcap: 0.9f));
    }

    [Fact]
    public void Masked_attention_matches_pytorch_fixture()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "attention_masked.json")));
        var root = doc.RootElement;
        int B = root.GetProperty("B").GetInt32(), T = root.GetProperty("T").GetInt32();
        int Hq = root.GetProperty("Hq").GetInt32(), Hkv = root.GetProperty("Hkv").GetInt32(), D = root.GetProperty("D").GetInt32();
        float scale = root.GetProperty("scale").GetSingle();
        static float[] Get(JsonElement e, string name) => [.. e.GetProperty(name).EnumerateArray().Select(v => v.GetSingle())];
        float[] q = Get(root, "q"), k = Get(root, "k"), v = Get(root, "v"), dO = Get(root, "do");
        int cq = Hq * D, ckv = Hkv * D;
        foreach (var c in root.GetProperty("cases").EnumerateArray())
        {
            int[] starts = [.. c.GetProperty("doc_starts").EnumerateArray().Select(e => e.GetInt32())];
            var mask = AttentionMask.Documents(starts, B, T, c.GetProperty("window").GetInt32(), c.GetProperty("softcap").GetSingle());
            foreach (bool reference in new[] { true, false })
            {
                var o = new float[B * T * cq];
                var lse = new float[B * Hq * T];
                float[] dq = new float[q.Length], dk = new float[k.Length], dv = new float[v.Length];
                if (reference)
                {
                    AttentionReference.Forward(B, T, Hq, Hkv, D, scale, q, cq, k, ckv, v, ckv, o, lse, mask);
                    AttentionReference.Backward(B, T, Hq, Hkv, D, scale, q, cq, k, ckv, v, ckv, o, lse, dO, dq, dk, dv, mask);
                }
                else
                {
                    Attention.Forward(B, T, Hq, Hkv, D, scale, q, cq, k, ckv, v, ckv, o, lse, mask);
                    Attention.Backward(B, T, Hq, Hkv, D, scale, q, cq, k, ckv, v, ckv, o, lse, dO, dq, dk, dv, mask);
                }
                string who = $"{(reference ? "reference" : "optimized")}, window {mask.Window}, cap {mask.Softcap}";
                AssertClose(Get(c, "o"), o, 1e-4, 1e-5, "o " + who);
                AssertClose(Get(c, "lse"), lse, 1e-4, 1e-5, "lse " + who);
                AssertClose(Get(c, "dq"), dq, 1e-4, 1e-5, "dq " + who);
                AssertClose(Get(c, "dk"), dk, 1e-4, 1e-5, "dk " + who);
                AssertClose(Get(c, "dv"), dv, 1e-4, 1e-5, "dv " + who);
            }
        }
    }

    [Fact]
    public void Cached_decode_past_the_window_equals_masked_full_attention() =>
        CheckCached(45, 4, 2, 16, 48, seed: 21, window: 10, softcap: 1.2f, [(0, 14), (14, 1), (15, 30)]);

    [Fact]
    public void Packed_documents_in_the_op_equal_each_document_run_alone()
    {
        // Row 0 packs documents of 5, 3 and 6 tokens; run alone, each is a batch row of its own whose positions start
        // at 0, so RoPE must restart at every document start for the outputs and gradients to match.
        const int hq = 4, hkv = 2, d = 8, t = 14, w = (hq + 2 * hkv) * d;
        int[] lengths = [5, 3, 6];
        var rope = new RopeTables(16, d, 10000, RopeStyle.Half);
        var rng = new Rng(17);
        var packed = new Tensor([1, t, w]) { RequiresGrad = true };
        rng.FillNormal(packed.Span, 1);
        var weights = new float[t * hq * d];
        rng.FillNormal(weights, 1);
        int[] seg = [.. lengths.SelectMany((n, i) => Enumerable.Repeat(i, n))];
        var mask = AttentionMask.Documents(AttentionMask.StartsFromSegments(seg, 1, t), 1, t);

        var g = new Graph();
        var input = g.NewTensor([1, t, w]);
        packed.Span.CopyTo(input.Span);
        input.RequiresGrad = true;
        var o = AttentionOp.Forward(g, input, hq, hkv, d, rope, mask);
        g.Backward(GradCheckSum(g, o, weights));
        float[] oPacked = o.Span.ToArray(), dPacked = input.Grad!.Span.ToArray();

        int start = 0;
        foreach (int n in lengths)
        {
            var g1 = new Graph();
            var one = g1.NewTensor([1, n, w]);
            packed.Span.Slice(start * w, n * w).CopyTo(one.Span);
            one.RequiresGrad = true;
            var o1 = AttentionOp.Forward(g1, one, hq, hkv, d, rope);
            g1.Backward(GradCheckSum(g1, o1, weights[(start * hq * d)..((start + n) * hq * d)]));
            AssertClose(o1.Span, oPacked.AsSpan(start * hq * d, n * hq * d), 1e-5, 1e-6, $"document at {start}: output");
            AssertClose(one.Grad!.Span, dPacked.AsSpan(start * w, n * w), 1e-5, 1e-6, $"document at {start}: gradient");
            start += n;
        }
    }

    private static Tensor GradCheckSum(Graph g, Tensor y, float[] w) => Quill.Tests.Autograd.GradCheck.WeightedSum(g, y, w);

    [Fact]
    public void Bad_masks_throw()
    {
        Assert.Throws<ArgumentException>(() => AttentionMask.Documents([0, 0, 1], 1, 3));     // a start that is neither
        Assert.Throws<ArgumentException>(() => AttentionMask.Documents([0, 0], 1, 3));        // wrong length
        Assert.Throws<ArgumentOutOfRangeException>(() => AttentionMask.Create(window: -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => AttentionMask.Create(softcap: float.NaN));
        var buf = new float[4 * 8];
        var twoRows = AttentionMask.Documents([0, 0], 1, 2);
        Assert.Throws<ArgumentException>(() => Attention.Forward(1, 4, 1, 1, 8, 1f, buf, 8, buf, 8, buf, 8, buf, new float[4], twoRows));
    }
}
