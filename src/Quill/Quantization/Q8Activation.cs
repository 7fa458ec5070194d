// An activation vector quantized once to int8 for the integer dot kernels, in the two groupings the weight
// formats need: 32-value blocks (for Q8_0 and Q4_0 weights: f32 scale, int8 values, block sum) and 256-value
// super-blocks (for Q4_K and Q6_K weights: f32 scale, int8 values, sums of each 16 values), as ggml's Q8_0 and
// Q8_K do. Each value is within scale / 2 of the original (scale = amax / 127 of its block). Build it once per
// input vector and reuse it for every matrix that reads that vector (q, k and v share one).
// Does not handle: vectors whose length is not a multiple of 32 (no 32-groups then) or of 256 (no 256-groups).
namespace Quill.Quantization;

/// <summary>An activation vector in int8 form for <see cref="QuantDot"/>'s integer kernels.</summary>
public sealed class Q8Activation
{
    /// <summary>Number of values.</summary>
    public int Length { get; }

    internal sbyte[] Q32 { get; } = [];      // [n]
    internal float[] Scale32 { get; } = [];  // [n / 32]
    internal int[] Sum32 { get; } = [];      // [n / 32]
    internal sbyte[] Q256 { get; } = [];     // [n]
    internal float[] Scale256 { get; } = []; // [n / 256]
    internal short[] Sum16 { get; } = [];    // [n / 16], only when n % 256 == 0

    /// <summary>True when the 32-value grouping exists (Length % 32 == 0).</summary>
    public bool Has32 => Scale32.Length * 32 == Length && Length > 0;

    /// <summary>True when the 256-value grouping exists (Length % 256 == 0).</summary>
    public bool Has256 => Scale256.Length * 256 == Length && Length > 0;

    private Q8Activation(int n)
    {
        Length = n;
        if (n % 32 == 0)
        {
            Q32 = new sbyte[n];
            Scale32 = new float[n / 32];
            Sum32 = new int[n / 32];
        }
        if (n % 256 == 0)
        {
            Q256 = new sbyte[n];
            Scale256 = new float[n / 256];
            Sum16 = new short[n / 16];
        }
    }

    /// <summary>Quantizes x. x: [n]</summary>
    public static Q8Activation Quantize(ReadOnlySpan<float> x)
    {
        var a = new Q8Activation(x.Length);
        if (a.Q32.Length > 0) Group(x, 32, a.Q32, a.Scale32);
        if (a.Q256.Length > 0) Group(x, 256, a.Q256, a.Scale256);
        for (int b = 0; b < a.Sum32.Length; b++)
        {
            int s = 0;
            for (int i = 0; i < 32; i++) s += a.Q32[32 * b + i];
            a.Sum32[b] = s;
        }
        for (int k = 0; k < a.Sum16.Length; k++)
        {
            int s = 0;
            for (int i = 0; i < 16; i++) s += a.Q256[16 * k + i];
            a.Sum16[k] = (short)s;
        }
        return a;
    }

    private static void Group(ReadOnlySpan<float> x, int size, sbyte[] q, float[] scale)
    {
        for (int b = 0; b < scale.Length; b++)
        {
            ReadOnlySpan<float> v = x.Slice(b * size, size);
            float amax = 0;
            foreach (float f in v) amax = MathF.Max(amax, MathF.Abs(f));
            float d = amax / 127f;
            float id = d > 0 ? 1f / d : 0f;
            scale[b] = d;
            for (int i = 0; i < size; i++) q[b * size + i] = (sbyte)Math.Clamp(QuantMath.RoundToInt(v[i] * id), -127, 127);
        }
    }
}
