// Rotary-embedding tables for inference: the per-pair frequencies theta^(-2i/d), optionally rescaled the Llama 3
// way (long wavelengths divided by the factor, short ones kept, a smooth blend between), then cos/sin tables for
// positions [0, maxT) in the [maxT, d/2] layout Kernels.Rope.Apply reads. Angles are computed in double.
// Does not handle: linear / dynamic NTK / YaRN scaling (the loaders reject those with a message).
// Glossary: d rotary dims, i pair index, t position.
namespace Quill.Inference;

/// <summary>Builds RoPE cos/sin tables, with Llama 3 frequency scaling when the model asks for it.</summary>
public static class RopeFrequencies
{
    /// <summary>The d/2 rotation frequencies of a model (radians per position).</summary>
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

    /// <summary>The tables a model spec asks for, for positions [0, maxT).</summary>
    public static (float[] Cos, float[] Sin) Tables(int maxT, ModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        return Tables(maxT, Frequencies(spec.EffectiveRotaryDim, spec.RopeTheta, spec.RopeScaling, spec.RopeLinearFactor, spec.RopeFreqFactors));
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

    /// <summary>cos and sin tables [maxT, d/2] for positions 0 .. maxT-1.</summary>
    public static (float[] Cos, float[] Sin) Tables(int maxT, int rotaryDim, double theta, Llama3RopeScaling? scaling)
        => Tables(maxT, Frequencies(rotaryDim, theta, scaling));

    private static (float[] Cos, float[] Sin) Tables(int maxT, double[] f)
    {
        int half = f.Length;
        var cos = new float[(long)maxT * half];
        var sin = new float[(long)maxT * half];
        for (int t = 0; t < maxT; t++)
        {
            for (int i = 0; i < half; i++)
            {
                double a = t * f[i];
                cos[t * half + i] = (float)Math.Cos(a);
                sin[t * half + i] = (float)Math.Sin(a);
            }
        }
        return (cos, sin);
    }
}
