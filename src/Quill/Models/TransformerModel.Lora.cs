// TransformerModel's LoRA: adding an adapter (AddLora / LoadLora from a PEFT folder), the projections an adapter may
// sit on (LoraSites), attaching A and B beside them (AttachLora, which freezes the base), and folding an adapter into a
// new model (MergeLora). The forward that applies them (Adapt) is in TransformerModel.cs.
using Quill.Kernels;
using Quill.Tensors;

namespace Quill.Models;

public sealed partial class TransformerModel
{
    public override LoraAdapter? Lora => lora;

    public override LoraAdapter AddLora(LoraConfig config, ulong seed = 1337)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        var slots = config.ResolveTargets(Spec);
        var sites = new List<(int, WeightSlot)>();
        var family = LoraConfig.Family(Spec);
        for (int i = 0; i < layers.Length; i++) sites.AddRange(slots.Where(s => WeightOf(layers[i], s, family) != null).Select(s => (i, s))); // a mixture's experts take no adapter
        return AttachLora(config, sites, new Rng(seed));
    }

    public override LoraAdapter LoadLora(string folder) => PeftAdapterFiles.Load(folder, this);

    /// <summary>Every projection an adapter may sit on: layer, slot, Quill's module path (the weight's name without ".weight") and the weight's [out, in].</summary>
    internal IEnumerable<(int Layer, WeightSlot Slot, string Module, int Out, int In)> LoraSites()
    {
        var family = LoraConfig.Family(Spec);
        for (int i = 0; i < layers.Length; i++)
        {
            foreach (var slot in LoraConfig.ModelOrder)
            {
                if (WeightOf(layers[i], slot, family) is { } w) yield return (i, slot, w.Name[..^".weight".Length], w.Dim(0), w.Dim(1));
            }
        }
    }

    /// <summary>
    /// Freezes every base parameter and adds A [r, in] and B [out, r] (zero) beside the projections at sites; A is
    /// drawn from U(-1/sqrt(in), 1/sqrt(in)) (nn.Linear's default, PEFT's kaiming_uniform(a = sqrt(5))) when rng is
    /// given, else left zero for a loader to fill.
    /// </summary>
    internal LoraAdapter AttachLora(LoraConfig config, IEnumerable<(int Layer, WeightSlot Slot)> sites, Rng? rng)
    {
        if (lora != null) throw new InvalidConfigException("the model already carries a LoRA adapter; merge it (MergeLora) or start again from the base model.");
        var family = LoraConfig.Family(Spec);
        var ordered = sites.Distinct().OrderBy(s => s.Layer).ThenBy(s => Array.IndexOf(LoraConfig.ModelOrder, s.Slot)).ToList();
        if (ordered.Count == 0) throw new InvalidConfigException("the LoRA adapter targets no projection; name some in target_modules.");
        foreach (var p in Parameters) ParameterSet.Freeze(p);
        var modules = new List<LoraModule>();
        foreach (var (i, slot) in ordered)
        {
            var w = WeightOf(layers[i], slot, family) ?? throw new InvalidOperationException($"layer {i} has no {slot} projection.");
            string module = w.Name[..^".weight".Length];
            int outF = w.Dim(0), inF = w.Dim(1);
            var a = Parameters.Add(module + ".lora_A.weight", ParameterKind.Matrix, config.Rank, inF);
            var b = Parameters.Add(module + ".lora_B.weight", ParameterKind.Matrix, outF, config.Rank);
            if (rng != null)
            {
                double bound = 1.0 / Math.Sqrt(inF);
                var span = a.Span;
                for (int k = 0; k < span.Length; k++) span[k] = (float)((2.0 * rng.NextDouble() - 1.0) * bound);
            }
            var m = new LoraModule(i, slot, module, a, b, w);
            SetLora(layers[i], m);
            modules.Add(m);
            stages = null; // the layers' tensors changed
        }
        var resolved = config with { TargetModules = LoraConfig.TargetNames(Spec, ordered.Select(s => s.Slot)) };
        lora = new LoraAdapter(resolved, Spec, modules);
        return lora;
    }

    /// <summary>
    /// A new model whose weights are the base's plus scaling * B A for every adapted projection (W [out, in] +=
    /// s B [out, r] A [r, in]); every parameter of it is trainable and it carries no adapter. This model is unchanged.
    /// </summary>
    public override LanguageModel MergeLora()
    {
        var c = lora ?? throw new InvalidConfigException("the model carries no LoRA adapter to merge; add one (AddLora) or load one (LoadLora) first.");
        var merged = FromWeights(BaseWeights(), Config.Clone());
        foreach (var m in c.Modules)
        {
            var w = merged.Parameters[m.Weight.Name];
            int outF = w.Dim(0), inF = w.Dim(1), r = m.A.Dim(0);
            Gemm.Sgemm(false, false, outF, inF, r, c.Scaling, m.B.Span, r, m.A.Span, inF, 1f, w.Span, inF); // W += s B A
        }
        return merged;
    }

    /// <summary>The base weight [out, in] of a layer's projection, or null when the architecture has none there.</summary>
    private static Tensor? WeightOf(Layer l, WeightSlot slot, LoraFamily family)
    {
        bool fused = l.Qkv.Length == 1;
        return slot switch
        {
            WeightSlot.Qkv => fused && family == LoraFamily.Gpt2 ? l.Qkv[0] : null,
            WeightSlot.Q => fused ? null : l.Qkv[0],
            WeightSlot.K => fused ? null : l.Qkv[1],
            WeightSlot.V => fused ? null : l.Qkv[2],
            WeightSlot.O => l.Wo,
            WeightSlot.Gate => l.Gate,
            WeightSlot.Up => l.Up,
            WeightSlot.Down => l.Down,
            _ => null,
        };
    }

    private static void SetLora(Layer l, LoraModule m)
    {
        switch (m.Slot)
        {
            case WeightSlot.Qkv: l.LoraQkv = m; break;
            case WeightSlot.Q: l.LoraQ = m; break;
            case WeightSlot.K: l.LoraK = m; break;
            case WeightSlot.V: l.LoraV = m; break;
            case WeightSlot.O: l.LoraO = m; break;
            case WeightSlot.Gate: l.LoraGate = m; break;
            case WeightSlot.Up: l.LoraUp = m; break;
            case WeightSlot.Down: l.LoraDown = m; break;
            default: throw new InvalidOperationException($"no adapter slot {m.Slot}.");
        }
    }
}
