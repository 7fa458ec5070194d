// A LoRA adapter attached to a TransformerModel: for each adapted projection W [out, in] of a layer, A [r, in] and
// B [out, r] as trainable parameters of the model, and the forward adds scaling * B(A(dropout(x))) to the projection's
// output (Autograd.Ops.LowRankAddOp; PEFT's formula and shapes, ../shared/research/wave2-facts.md section 1.1).
// Parameter names are PEFT's without its "base_model.model." prefix: the base weight's name with ".weight" replaced
// by ".lora_A.weight" / ".lora_B.weight" (model.layers.0.self_attn.q_proj.lora_A.weight,
// transformer.h.0.attn.c_attn.lora_B.weight), so train.trainable globs such as "*lora_*" select them.
// Files: Save writes PEFT's adapter folder (Models.PeftAdapterFiles); LanguageModel.LoadLora reads one onto a base;
// ReadWeights reads A and B back into this adapter (a training checkpoint, bit for bit).
// Enabled = false switches the adapter off: the forward is the plain base's (the reference model of preference
// tuning, as TRL/PEFT's disable_adapter, so no second copy of the base is held).
// Not handled: several adapters on one model, unmerging.
using Quill.Tensors;

namespace Quill.Models;

/// <summary>The A and B of one adapted projection of one layer.</summary>
public sealed class LoraModule
{
    internal LoraModule(int layer, WeightSlot slot, string module, Tensor a, Tensor b, Tensor weight)
    {
        Layer = layer;
        Slot = slot;
        Module = module;
        A = a;
        B = b;
        Weight = weight;
    }

    /// <summary>The layer index.</summary>
    public int Layer { get; }

    /// <summary>Which projection: Q, K, V, O, Gate, Up, Down (Llama family) or Qkv, O, Up, Down (GPT-2).</summary>
    public WeightSlot Slot { get; }

    /// <summary>The projection's module path in Quill's names (the base weight's name without ".weight").</summary>
    public string Module { get; }

    /// <summary>lora_A [r, in].</summary>
    public Tensor A { get; }

    /// <summary>lora_B [out, r].</summary>
    public Tensor B { get; }

    /// <summary>The frozen base weight [out, in] beside which the adapter runs.</summary>
    internal Tensor Weight { get; }
}

/// <summary>The LoRA adapter of a model: its config and one <see cref="LoraModule"/> per adapted projection.</summary>
public sealed class LoraAdapter
{
    internal LoraAdapter(LoraConfig config, ModelSpec spec, IReadOnlyList<LoraModule> modules)
    {
        Config = config;
        Spec = spec;
        Modules = modules;
        Scaling = (float)config.Scaling;
    }

    /// <summary>The config, its TargetModules naming exactly the adapted projections.</summary>
    public LoraConfig Config { get; }

    /// <summary>The adapted projections, by layer, then in the order a layer runs them.</summary>
    public IReadOnlyList<LoraModule> Modules { get; }

    /// <summary>
    /// True (the default) when the model's forward adds the adapter; false runs the frozen base alone (the reference
    /// of preference tuning). Training with it off trains nothing: A and B get no gradient.
    /// </summary>
    public bool Enabled { get; set; } = true;

    /// <summary>alpha / r (alpha / sqrt(r) with rsLoRA), in the precision the forward uses.</summary>
    public float Scaling { get; }

    /// <summary>The spec of the model the adapter belongs to (its RoPE layout decides the q/k row order on disk).</summary>
    internal ModelSpec Spec { get; }

    /// <summary>Number of adapter values (all of A and B).</summary>
    public long ElementCount => Modules.Sum(m => (long)m.A.Length + m.B.Length);

    /// <summary>
    /// Overwrites A and B with those of a folder saved from this adapter or one of the same modules and rank (a
    /// training checkpoint), bit for bit. InvalidFileException, one line, when the folder holds another adapter.
    /// </summary>
    public void ReadWeights(string folder) => PeftAdapterFiles.ReadWeights(this, folder);

    /// <summary>
    /// Writes PEFT's adapter folder: adapter_config.json and adapter_model.safetensors (see PeftAdapterFiles), which
    /// PEFT loads onto the Hugging Face base model named by <paramref name="baseModelNameOrPath"/>.
    /// </summary>
    public void Save(string folder, string baseModelNameOrPath = "")
    {
        ArgumentNullException.ThrowIfNull(folder);
        ArgumentNullException.ThrowIfNull(baseModelNameOrPath);
        PeftAdapterFiles.Save(this, folder, baseModelNameOrPath);
    }
}
