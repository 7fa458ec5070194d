// Rotary-embedding frequencies of a model spec: theta^(-2i/d) per pair, divided by a linear factor, rescaled the
// Llama 3 way (long wavelengths divided by the factor, short ones kept, a smooth blend between) and divided by
// llama.cpp's per-pair rope_freqs when the file has them. This is the only place RoPE frequencies are computed;
// Kernels.Rope.Tables turns them into the cos/sin tables that training (RopeTables) and inference both read.
// LongRoPE (Phi-3.5 / Phi-4): each pair's frequency divided by its short or long factor (long when the tables reach
// past the original context, as llama.cpp decides by the context it runs; the trainable model decides per batch by
// its sequence length, as transformers does) and cos, sin times the attention factor.
// Does not handle: dynamic NTK / YaRN scaling (the loaders reject those with a message).
// Glossary: d rotary dims, i pair index, t position.
using Quill.Autograd.Ops;

namespace Quill.Models;

/// <summary>RoPE frequencies and tables for a spec, with Llama 3 / linear scaling when the model asks for it.</summary>
public static class RopeFrequencies
{
    /// <summary>The d/2 rotation frequencies (radians per position).</summary>
    public static double[] Frequencies(int rotaryDim, double theta, Llama3RopeScaling? scaling, double linearFactor = 1.0, float[]? freqFactors = null)
    {
        var f = new double[rotaryDim / 2];
        if (freqFactors != null && freqFactors.Length != f.Length)
            throw new InvalidFileException($"rope_freqs holds {freqFactors.Length} factors but the model rotates {f.Length} pairs; the model file is inconsistent.");
        for (int i = 0; i < f.Length; i++)
        {
            double freq = Math.Pow(theta, -2.0 * i / rotaryDim) / linearFactor;
            if (scaling != null) freq = ScaleLlama3(freq, scaling);
            if (freqFactors != null) freq /= freqFactors[i];
            f[i] = freq;
        }
        return f;
    }

    /// <summary>The frequencies a spec asks for.</summary>
    public static double[] Frequencies(ModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return Frequencies(spec.EffectiveRotaryDim, spec.RopeTheta, spec.RopeScaling, spec.RopeLinearFactor, spec.RopeFreqFactors);
    }

    /// <summary>
    /// cos/sin tables for positions [0, maxT) of a spec with rotary positions; LongRoPE uses the long factors when
    /// <paramref name="reach"/> (default maxT) exceeds the original context.
    /// </summary>
    public static RopeTables Tables(ModelSpec spec, int maxT, int reach = 0)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var f = Frequencies(spec);
        if (spec.LongRope is not { } lr) return new RopeTables(maxT, f, spec.RopeStyle);
        var factors = lr.FactorsFor(reach > 0 ? reach : maxT);
        for (int i = 0; i < f.Length; i++) f[i] /= factors[i];
        return new RopeTables(maxT, f, spec.RopeStyle, (float)lr.AttentionFactor);
    }

    /// <summary>cos/sin tables of the windowed layers of a spec with their own base (Gemma 3): plain frequencies of
    /// RopeThetaLocal, without the global layers' scaling.</summary>
    public static RopeTables LocalTables(ModelSpec spec, int maxT)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return new RopeTables(maxT, Frequencies(spec.EffectiveRotaryDim, spec.RopeThetaLocal, null), spec.RopeStyle);
    }

    /// <summary>One frequency rescaled as Llama 3.1 does (unchanged when its wavelength is short).</summary>
    public static double ScaleLlama3(double freq, Llama3RopeScaling s)
    {
        ArgumentNullException.ThrowIfNull(s);
        double wavelen = 2 * Math.PI / freq;
        double lowFreqWavelen = s.OriginalMaxPositions / s.LowFreqFactor;
        double highFreqWavelen = s.OriginalMaxPositions / s.HighFreqFactor;
        if (wavelen < highFreqWavelen) return freq;
        if (wavelen > lowFreqWavelen) return freq / s.Factor;
        double smooth = (s.OriginalMaxPositions / wavelen - s.LowFreqFactor) / (s.HighFreqFactor - s.LowFreqFactor);
        return (1 - smooth) * freq / s.Factor + smooth * freq;
    }
}
