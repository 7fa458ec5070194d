// Test-only: ggml's CPU GELU as llama.cpp computes it (GGML_GELU_FP16, the default of ggml-cpu): the input rounded
// to half precision, then looked up in a 65,536-entry half-precision table of 0.5 x (1 + tanh(sqrt(2/pi) x (1 +
// 0.044715 x^2))) over every half value; x <= -10 gives 0 and x >= 10 gives x. Used with InferenceEngine.GeluOverride to
// show that Quill's GPT-2 computes llama.cpp's logits once this one approximation of ggml's is shared.
using Quill.Kernels;

namespace Quill.Tests.Support;

internal static class GgmlGelu
{
    private static readonly Lazy<ushort[]> Table = new(() =>
    {
        var t = new ushort[65536];
        for (int i = 0; i < t.Length; i++)
        {
            float x = Fp16.ToSingle((ushort)i);
            t[i] = Fp16.FromSingle(0.5f * x * (1.0f + MathF.Tanh(0.7978845608028654f * x * (1.0f + 0.044715f * x * x))));
        }
        return t;
    });

    /// <summary>y = ggml's table GELU of x.</summary>
    public static void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        var t = Table.Value;
        for (int i = 0; i < x.Length; i++)
        {
            float v = x[i];
            y[i] = v <= -10f ? 0f : v >= 10f ? v : Fp16.ToSingle(t[Fp16.FromSingle(v)]);
        }
    }
}
