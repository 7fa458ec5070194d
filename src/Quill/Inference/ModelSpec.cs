// The shape of a model as the inference engine runs it, whatever file it came from: the block family (Llama-style:
// RMSNorm, RoPE, SwiGLU, GQA; or GPT-2-style: LayerNorm with biases, learned positions, GELU), sizes, norm epsilon,
// and the rotary settings (theta, pairing style, rotary dims, Llama 3 frequency scaling). Loaders fill it from a
// Quill config, a llama2.c header, GGUF metadata or a HF config.json, then Validate checks it before any memory
// is touched.
// A sliding attention window (Mistral, Phi-3) is not run as such: Quill attends to every cached position, which
// equals windowed attention while the cache holds no more than the window, so the loaders cap MaxContext to it.
// Not handled: windowed attention beyond the window, mixture-of-experts, ALiBi, parallel attention/MLP blocks.
// Glossary: C model width, Hq query heads, Hkv key/value heads, D head size, F MLP width, V vocabulary.
using Quill.Kernels;

namespace Quill.Inference;

/// <summary>Which block structure the model uses.</summary>
public enum ModelFamily
{
    /// <summary>Pre-RMSNorm, rotary positions, grouped-query attention, SwiGLU MLP (Llama, Mistral, Qwen2, llama2.c).</summary>
    Llama,

    /// <summary>Pre-LayerNorm with biases, learned positions, fused qkv, GELU MLP (GPT-2).</summary>
    Gpt2,
}

/// <summary>Llama 3 style rotary frequency scaling (rope_scaling type "llama3").</summary>
/// <param name="Factor">Frequencies below the low-frequency band are divided by this.</param>
/// <param name="LowFreqFactor">Wavelengths above original / low_freq_factor are fully scaled.</param>
/// <param name="HighFreqFactor">Wavelengths below original / high_freq_factor are left alone.</param>
/// <param name="OriginalMaxPositions">Context the model was pre-trained at.</param>
public sealed record Llama3RopeScaling(double Factor, double LowFreqFactor, double HighFreqFactor, int OriginalMaxPositions);

/// <summary>Architecture and sizes of a model to run.</summary>
public sealed record ModelSpec
{
    public required ModelFamily Family { get; init; }

    /// <summary>The architecture name the file gave (llama, mistral, qwen2, gpt2, llama2.c, ...), for messages.</summary>
    public required string Arch { get; init; }

    /// <summary>C.</summary>
    public required int Dim { get; init; }

    public required int Layers { get; init; }

    /// <summary>Hq.</summary>
    public required int Heads { get; init; }

    /// <summary>Hkv (equal to Heads without grouped-query attention).</summary>
    public required int KvHeads { get; init; }

    /// <summary>D (usually Dim / Heads).</summary>
    public required int HeadDim { get; init; }

    /// <summary>F.</summary>
    public required int Hidden { get; init; }

    /// <summary>V.</summary>
    public required int VocabSize { get; init; }

    /// <summary>Longest sequence Quill runs the model at: its trained context, capped to <see cref="SlidingWindow"/>.</summary>
    public required int MaxContext { get; init; }

    /// <summary>The attention window the model was trained with (Mistral, Phi-3), or 0 for none.</summary>
    public int SlidingWindow { get; init; }

    public required float NormEps { get; init; }

    /// <summary>RoPE base (Llama family only).</summary>
    public double RopeTheta { get; init; } = 10000.0;

    /// <summary>How dims are paired for rotation: Interleaved (llama2.c, Meta, GGUF llama) or Half (HF, GGUF qwen2/phi3).</summary>
    public RopeStyle RopeStyle { get; init; } = RopeStyle.Interleaved;

    /// <summary>Dims of each head that rotate (0 = all of HeadDim).</summary>
    public int RotaryDim { get; init; }

    public Llama3RopeScaling? RopeScaling { get; init; }

    /// <summary>Linear position scaling: every frequency divided by this (1 = none).</summary>
    public double RopeLinearFactor { get; init; } = 1.0;

    /// <summary>Per-pair frequency divisors [rotaryDim / 2] (GGUF rope_freqs, llama.cpp's form of Llama 3 scaling), or null.</summary>
    public float[]? RopeFreqFactors { get; init; }

    /// <summary>Width of the fused q|k|v row: (Hq + 2 Hkv) D.</summary>
    public int QkvDim => (Heads + 2 * KvHeads) * HeadDim;

    /// <summary>Hq D (may differ from Dim when head_dim is set explicitly).</summary>
    public int QDim => Heads * HeadDim;

    /// <summary>Hkv D.</summary>
    public int KvDim => KvHeads * HeadDim;

    public int EffectiveRotaryDim => RotaryDim > 0 ? RotaryDim : HeadDim;

    /// <summary>
    /// The context Quill can run exactly: the trained context, or the sliding window when that is shorter (full
    /// attention over at most the window's positions is what windowed attention computes). A window of 0 or less
    /// means none.
    /// </summary>
    public static int UsableContext(int trainedContext, int slidingWindow) =>
        slidingWindow > 0 ? Math.Min(trainedContext, slidingWindow) : trainedContext;

    /// <summary>Throws InvalidFileException naming <paramref name="source"/> and the first impossible field.</summary>
    public void Validate(string source)
    {
        void Fail(string what) => throw new InvalidFileException($"{source}: {what}; the model file is inconsistent.");
        if (Dim < 1 || Layers < 1 || Heads < 1 || KvHeads < 1 || HeadDim < 1 || Hidden < 1 || VocabSize < 1 || MaxContext < 1)
            Fail($"non-positive size (dim {Dim}, layers {Layers}, heads {Heads}, kv heads {KvHeads}, head dim {HeadDim}, hidden {Hidden}, vocab {VocabSize}, context {MaxContext})");
        if (Heads % KvHeads != 0) Fail($"{Heads} query heads are not a multiple of {KvHeads} key/value heads");
        if (Family == ModelFamily.Llama)
        {
            int rd = EffectiveRotaryDim;
            if (rd % 2 != 0 || rd > HeadDim) Fail($"rotary dims {rd} must be even and at most the head size {HeadDim}");
            if (!(RopeTheta > 0)) Fail($"rope theta {RopeTheta} must be positive");
        }
        if (!(NormEps > 0)) Fail($"norm epsilon {NormEps} must be positive");
    }
}
