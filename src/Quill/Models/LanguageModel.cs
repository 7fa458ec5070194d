// What every transformer language model offers the trainer and the sampler: parameters, a config, and a forward
// pass from token ids to logits; plus the factory that builds GPT-2 or Llama from a config.
using Quill.Autograd;
using Quill.Autograd.Ops;
using Quill.Tensors;

namespace Quill.Models;

/// <summary>A decoder-only transformer: token ids in, next-token logits out.</summary>
public abstract class LanguageModel
{
    protected LanguageModel(ModelConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        Config = config;
    }

    public ModelConfig Config { get; }

    public ParameterSet Parameters { get; } = new();

    /// <summary>Logits [B, T, V] for tokens [B * T] (row-major over batch then time).</summary>
    /// <param name="g">Graph that records (training) or not (inference).</param>
    /// <param name="tokens">[B * T] ids; an id outside the vocabulary raises QuillException.</param>
    /// <param name="b">Batch size.</param>
    /// <param name="t">Sequence length, at most block_size.</param>
    /// <param name="dropoutSeed">Seed of this forward pass's dropout masks (ignored when dropout is 0).</param>
    public abstract Tensor Forward(Graph g, int[] tokens, int b, int t, ulong dropoutSeed = 0);

    /// <summary>Mean cross-entropy [1] of the logits against targets [B * T] (negative targets ignored).</summary>
    public Tensor Loss(Graph g, int[] tokens, int[] targets, int b, int t, ulong dropoutSeed = 0)
    {
        var logits = Forward(g, tokens, b, t, dropoutSeed);
        return CrossEntropyOp.Forward(g, logits, targets);
    }

    /// <summary>Builds a GPT-2 or Llama model with freshly initialized weights (reproducible for a seed).</summary>
    public static LanguageModel Create(ModelConfig config, ulong seed = 1337)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        LanguageModel m = config.IsLlama ? new LlamaModel(config) : new GptModel(config);
        m.Initialize(new Rng(seed));
        return m;
    }

    /// <summary>GPT-2 style init: N(0, 0.02) matrices, residual output projections scaled by 1/sqrt(2 L), norms 1, biases 0.</summary>
    protected void Initialize(Rng rng)
    {
        ArgumentNullException.ThrowIfNull(rng);
        double residualStd = 0.02 / Math.Sqrt(2.0 * Config.NLayer);
        foreach (var p in Parameters)
        {
            if (p.Rank >= 2)
            {
                bool residual = p.Name.EndsWith("c_proj.weight", StringComparison.Ordinal) || p.Name.EndsWith("o_proj.weight", StringComparison.Ordinal)
                    || p.Name.EndsWith("down_proj.weight", StringComparison.Ordinal);
                rng.FillNormal(p.Span, residual ? residualStd : 0.02);
            }
            else if (IsNormWeight(p.Name))
            {
                p.Span.Fill(1f);
            }
            else
            {
                p.Span.Clear();
            }
        }
    }

    private static bool IsNormWeight(string name) =>
        name.EndsWith("norm.weight", StringComparison.Ordinal) || name.Contains("ln_", StringComparison.Ordinal) && name.EndsWith(".weight", StringComparison.Ordinal);

    /// <summary>Checks a token sequence against the model before running it.</summary>
    protected void CheckInput(int[] tokens, int b, int t)
    {
        ArgumentNullException.ThrowIfNull(tokens);
        if (b < 1 || t < 1) throw new ArgumentException($"batch {b} x time {t} is empty.");
        if (t > Config.BlockSize) throw new InvalidConfigException($"sequence of {t} tokens is longer than the model's context (block_size {Config.BlockSize}); shorten it.");
        if (tokens.Length < b * t) throw new ArgumentException($"{tokens.Length} tokens for batch {b} x time {t}.");
    }
}
