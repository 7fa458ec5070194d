// The settings of a LoRA adapter, after PEFT's LoraConfig (../shared/research/wave2-facts.md section 1.1): rank r,
// lora_alpha, lora_dropout, use_rslora (scaling alpha / sqrt(r) instead of alpha / r) and target_modules, the
// projections that get an adapter, named as in the Hugging Face model:
//   Llama family (llama, mistral, qwen2, llama2.c): q_proj k_proj v_proj o_proj gate_proj up_proj down_proj
//   GPT-2: c_attn (the fused q|k|v), attn.c_proj, c_fc, mlp.c_proj, and c_proj = both c_proj layers, because PEFT
//          matches a listed name against the end of each module's path (".c_proj" ends attn.c_proj and mlp.c_proj)
//   both:  "all-linear" = every projection except the output head, as PEFT's wildcard
// The default (no target_modules) is q, k, v, o (Llama family) and c_attn + attn.c_proj (GPT-2); PEFT's own default
// is q, v / c_attn. Quill's defaults for r and alpha are 8 and 16 (PEFT's alpha default is 8).
// Not handled: phi3 (its Hugging Face model fuses qkv_proj and gate_up_proj, which Quill runs split), regular
// expressions in target_modules, rank_pattern / alpha_pattern, DoRA, lora_bias, adapters on embeddings or the head.
namespace Quill.Models;

/// <summary>Rank, scaling, dropout and target projections of a LoRA adapter (PEFT's LoraConfig fields).</summary>
public sealed record LoraConfig
{
    /// <summary>The wildcard for every projection except the output head.</summary>
    public const string AllLinear = "all-linear";

    /// <summary>r: the rank of A [r, in] and B [out, r].</summary>
    public int Rank { get; init; } = 8;

    /// <summary>lora_alpha: the update is scaled by alpha / r (alpha / sqrt(r) with <see cref="UseRsLora"/>).</summary>
    public double Alpha { get; init; } = 16;

    /// <summary>lora_dropout: dropout on the adapter's input while training (0 = none).</summary>
    public float Dropout { get; init; }

    /// <summary>use_rslora: scale by alpha / sqrt(r) (rank-stabilized LoRA).</summary>
    public bool UseRsLora { get; init; }

    /// <summary>target_modules (see the file header); null or empty: the architecture's default.</summary>
    public IReadOnlyList<string>? TargetModules { get; init; }

    /// <summary>The factor on B A x: alpha / r, or alpha / sqrt(r) with rsLoRA.</summary>
    public double Scaling => UseRsLora ? Alpha / Math.Sqrt(Rank) : Alpha / Rank;

    /// <summary>Throws InvalidConfigException naming the first impossible field.</summary>
    public void Validate()
    {
        if (Rank < 1) throw new InvalidConfigException($"lora r must be at least 1 (got {Rank}).");
        if (!(Alpha > 0) || double.IsInfinity(Alpha)) throw new InvalidConfigException($"lora_alpha must be a positive number (got {Alpha}).");
        if (!(Dropout >= 0f && Dropout < 1f)) throw new InvalidConfigException($"lora_dropout must be in [0, 1) (got {Dropout}).");
    }

    /// <summary>The target module names an architecture accepts (the file header's table).</summary>
    public static IReadOnlyList<string> ValidTargetModules(ModelSpec spec) => [.. NamesOf(spec).Select(n => n.Name), AllLinear];

    /// <summary>The projections of each layer that get an adapter, in model order; InvalidConfigException for a name the architecture lacks.</summary>
    internal IReadOnlyList<WeightSlot> ResolveTargets(ModelSpec spec)
    {
        var names = NamesOf(spec);
        IReadOnlyList<string> wanted = TargetModules is { Count: > 0 } t ? t : Family(spec) == LoraFamily.Gpt2 ? ["c_attn", "attn.c_proj"] : ["q_proj", "k_proj", "v_proj", "o_proj"];
        var slots = new HashSet<WeightSlot>();
        foreach (string name in wanted)
        {
            if (name == AllLinear) slots.UnionWith(names.SelectMany(n => n.Slots));
            else if (Array.Find(names, n => n.Name == name).Slots is { } s) slots.UnionWith(s);
            else throw new InvalidConfigException($"lora target module '{name}' is not a projection of {spec.Arch}; use some of: {string.Join(", ", ValidTargetModules(spec))}.");
        }
        return [.. ModelOrder.Where(slots.Contains)];
    }

    /// <summary>The shortest target_modules list PEFT matches to exactly these projections (what adapter_config.json records).</summary>
    internal static List<string> TargetNames(ModelSpec spec, IEnumerable<WeightSlot> slots)
    {
        var left = slots.ToHashSet();
        var names = new List<string>();
        foreach (var (name, s) in NamesOf(spec))
        {
            // GPT-2's c_proj covers attn.c_proj and mlp.c_proj: c_proj when both are there, else the one
            if (s.All(left.Contains))
            {
                names.Add(name);
                left.ExceptWith(s);
            }
        }
        return names;
    }

    /// <summary>The projections in the order a layer runs them (and PEFT's state dict lists them).</summary>
    internal static readonly WeightSlot[] ModelOrder = [WeightSlot.Q, WeightSlot.K, WeightSlot.V, WeightSlot.Qkv, WeightSlot.O, WeightSlot.Gate, WeightSlot.Up, WeightSlot.Down];

    internal static LoraFamily Family(ModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Arch == "phi3")
            throw new InvalidConfigException("LoRA adapters for phi3 are not supported: its Hugging Face model fuses qkv_proj and gate_up_proj, which Quill runs split (llama, mistral, qwen2 and gpt2 work).");
        return TensorNames.ForQuillCheckpoint(spec) == TensorNames.NanoGpt ? LoraFamily.Gpt2 : LoraFamily.Llama;
    }

    // GPT-2's c_proj before attn.c_proj and mlp.c_proj, so TargetNames prefers it when both are adapted
    private static readonly (string Name, WeightSlot[] Slots)[] Gpt2Names =
    [
        ("c_attn", [WeightSlot.Qkv]),
        ("c_proj", [WeightSlot.O, WeightSlot.Down]),
        ("attn.c_proj", [WeightSlot.O]),
        ("c_fc", [WeightSlot.Up]),
        ("mlp.c_proj", [WeightSlot.Down]),
    ];

    private static readonly (string Name, WeightSlot[] Slots)[] LlamaNames =
    [
        ("q_proj", [WeightSlot.Q]),
        ("k_proj", [WeightSlot.K]),
        ("v_proj", [WeightSlot.V]),
        ("o_proj", [WeightSlot.O]),
        ("gate_proj", [WeightSlot.Gate]),
        ("up_proj", [WeightSlot.Up]),
        ("down_proj", [WeightSlot.Down]),
    ];

    private static (string Name, WeightSlot[] Slots)[] NamesOf(ModelSpec spec) => Family(spec) == LoraFamily.Gpt2 ? Gpt2Names : LlamaNames;
}

/// <summary>Which Hugging Face module names an adapter uses.</summary>
internal enum LoraFamily
{
    /// <summary>model.layers.{i}.self_attn.q_proj, ... (separate q, k, v; gate, up, down).</summary>
    Llama,

    /// <summary>transformer.h.{i}.attn.c_attn (fused q|k|v, Conv1D in the HF file), attn.c_proj, mlp.c_fc, mlp.c_proj.</summary>
    Gpt2,
}
