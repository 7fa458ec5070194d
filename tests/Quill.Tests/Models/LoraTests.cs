// LoRA adapters held to PyTorch and to PEFT's file layout: PEFT adapter folders written by
// fixtures/make_lora_fixtures.py (float64 torch, PEFT's formula) on the crosscheck llama and gpt2 models load onto the
// models Quill builds from the same HF folders, and give torch's logits, loss and gradient of every lora_A / lora_B
// while the base gets no gradient; saving writes the same tensors back (exactly, also from an interleaved-RoPE copy
// of the llama model, whose q/k rows are permuted), merging equals running the adapter, AddLora follows PEFT's names,
// shapes and init, training (by hand and with the Trainer) moves only the adapter, and bad configs and files fail in
// one line.
using System.Text.Json.Nodes;
using Quill.Autograd;
using Quill.Formats.SafeTensors;
using Quill.Inference;
using Quill.Models;
using Quill.Tensors;
using Quill.Training;
using Quill.Tests.Support;

namespace Quill.Tests.Models;

public sealed class LoraTests : IDisposable
{
    private static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "fixtures");
    private readonly string dir = Directory.CreateTempSubdirectory("quill-lora-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    public static TheoryData<string> Cases() => new("llama", "llama_rslora", "gpt2");

    private sealed record Case(string Base, int B, int T, int[] Tokens, int[] Targets, double Loss, float[] Logits, int Modules, string Adapter);

    private static Case ReadCase(string name)
    {
        string folder = Path.Combine(Fixtures, "lora", name);
        var j = JsonNode.Parse(File.ReadAllText(Path.Combine(folder, "step.json")))!;
        string baseArch = j["base"]!.GetValue<string>();
        var cross = JsonNode.Parse(File.ReadAllText(Path.Combine(Fixtures, "crosscheck", baseArch, "step.json")))!;
        int[] Flat(string key) => [.. cross[key]!.AsArray().SelectMany(row => row!.AsArray().Select(n => n!.GetValue<int>()))];
        int b = cross["sizes"]!["batch"]!.GetValue<int>(), t = cross["sizes"]!["seq"]!.GetValue<int>();
        byte[] raw = File.ReadAllBytes(Path.Combine(folder, "logits.bin"));
        var logits = new float[raw.Length / 4];
        Buffer.BlockCopy(raw, 0, logits, 0, raw.Length);
        return new Case(baseArch, b, t, Flat("tokens"), Flat("targets"), j["loss"]!.GetValue<double>(), logits,
            j["modules"]!.AsArray().Count, Path.Combine(folder, "adapter"));
    }

    /// <summary>The trainable model of a crosscheck HF folder (its forward is proven against torch in CrossCheckTests).</summary>
    private static LanguageModel Base(string arch)
    {
        using var model = ModelLoader.Load(Path.Combine(Fixtures, "crosscheck", arch, "hf"));
        return LanguageModel.FromWeights(model.Weights);
    }

    private static float[] Logits(LanguageModel lm, Case c) => lm.Forward(new Graph(recording: false), c.Tokens, c.B, c.T).ToArray();

    private static bool IsLora(Tensor p) => p.Name.Contains(".lora_", StringComparison.Ordinal);

    [Theory]
    [MemberData(nameof(Cases))]
    public void A_peft_adapter_gives_torch_logits_loss_and_adapter_gradients(string name)
    {
        var c = ReadCase(name);
        var lm = Base(c.Base);
        var adapter = lm.LoadLora(c.Adapter);
        Assert.Same(adapter, lm.Lora);
        Assert.Equal(c.Modules, adapter.Modules.Count);

        Close.Assert(c.Logits, Logits(lm, c), 1e-4, $"{name}: logits vs torch");

        lm.Parameters.EnableGrads();
        var g = new Graph();
        var loss = lm.Loss(g, c.Tokens, c.Targets, c.B, c.T);
        Assert.Equal(c.Loss, loss.Item(), 1e-5);
        g.Backward(loss);

        using var grads = SafeTensorsFile.Open(Path.Combine(Fixtures, "lora", name, "grads.safetensors"));
        var covered = new HashSet<string>(StringComparer.Ordinal);
        foreach (var p in lm.Parameters)
        {
            if (!IsLora(p))
            {
                Assert.False(p.RequiresGrad, $"{p.Name} should be frozen");
                Assert.Null(p.Grad);
                continue;
            }
            string file = PeftAdapterFiles.Prefix + p.Name;
            covered.Add(file);
            float[] want = grads.ReadSingle(file), got = p.Grad!.ToArray();
            Assert.Equal(grads.GetInfo(file).Shape, p.Shape.Select(d => (long)d));
            double diff = 0, norm = 0;
            for (int i = 0; i < want.Length; i++)
            {
                diff += (double)(got[i] - want[i]) * (got[i] - want[i]);
                norm += (double)want[i] * want[i];
            }
            Assert.True(norm > 0, $"{name}: torch gradient of {p.Name} is zero; the fixture would prove nothing.");
            double rel = Math.Sqrt(diff / norm);
            Assert.True(rel < 2e-3, $"{name}: gradient of {p.Name} differs from torch by {rel:G3} of its norm");
        }
        Assert.Equal(grads.Names.Order(), covered.Order());
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Save_writes_the_peft_files_back_exactly_and_they_load_again(string name)
    {
        var c = ReadCase(name);
        var lm = Base(c.Base);
        var adapter = lm.LoadLora(c.Adapter);
        string saved = Path.Combine(dir, name);
        adapter.Save(saved, "crosscheck/" + c.Base + "/hf");

        using (var want = SafeTensorsFile.Open(Path.Combine(c.Adapter, PeftAdapterFiles.WeightsFile)))
        using (var got = SafeTensorsFile.Open(Path.Combine(saved, PeftAdapterFiles.WeightsFile)))
        {
            Assert.Equal(want.Names, got.Names); // PEFT's state-dict order: by layer, then module, A before B
            Assert.Equal("pt", got.Metadata["format"]);
            foreach (string n in want.Names)
            {
                Assert.Equal(want.GetInfo(n).Shape, got.GetInfo(n).Shape);
                Assert.Equal(want.ReadSingle(n), got.ReadSingle(n));
            }
        }
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(saved, PeftAdapterFiles.ConfigFile)))!;
        var fixture = JsonNode.Parse(File.ReadAllText(Path.Combine(c.Adapter, PeftAdapterFiles.ConfigFile)))!;
        foreach (string key in new[] { "peft_type", "task_type", "r", "lora_alpha", "lora_dropout", "use_rslora", "bias", "fan_in_fan_out", "inference_mode", "target_modules", "base_model_name_or_path" })
            Assert.True(JsonNode.DeepEquals(fixture[key], cfg[key]), $"{key}: {cfg[key]?.ToJsonString()} vs PEFT's {fixture[key]?.ToJsonString()}");

        var again = Base(c.Base);
        var back = again.LoadLora(saved);
        Assert.Equal(adapter.Config with { TargetModules = null }, back.Config with { TargetModules = null });
        Assert.Equal(adapter.Config.TargetModules, back.Config.TargetModules);
        for (int i = 0; i < adapter.Modules.Count; i++)
        {
            Assert.Equal(adapter.Modules[i].A.ToArray(), back.Modules[i].A.ToArray());
            Assert.Equal(adapter.Modules[i].B.ToArray(), back.Modules[i].B.ToArray());
        }
    }

    [Theory]
    [InlineData("llama")]
    [InlineData("gpt2")]
    public void Merging_equals_running_the_adapter(string arch)
    {
        var lm = Base(arch);
        var plainWeights = lm.Parameters.Select(p => p.ToArray()).ToList();
        var adapter = lm.AddLora(new LoraConfig { Rank = 4, Alpha = 8, TargetModules = [LoraConfig.AllLinear] });
        var rng = new Rng(5);
        foreach (var m in adapter.Modules) rng.FillNormal(m.B.Span, 0.05);
        var c = ReadCase(arch);
        float[] unmerged = Logits(lm, c);

        var merged = lm.MergeLora();
        Assert.Null(merged.Lora);
        Assert.Equal(plainWeights.Count, merged.Parameters.Count);
        Assert.All(merged.Parameters, p => Assert.True(p.RequiresGrad));
        Close.Assert(unmerged, Logits(merged, c), 1e-5, $"{arch}: merged vs base + adapter");
        using (var engine = InferenceModel.FromLanguageModel(merged))
        {
            var e = new InferenceEngine(engine);
            var row = new float[c.T * merged.Spec.VocabSize];
            e.Forward(e.CreateCache(), c.Tokens.AsSpan(0, c.T), row, allLogits: true);
            Close.Assert(unmerged[..row.Length], row, 1e-4, $"{arch}: the inference engine on the merged model");
        }

        // the model with the adapter is unchanged and still runs it; each adapted weight moved by exactly s B A
        Assert.Same(adapter, lm.Lora);
        Close.Assert(unmerged, Logits(lm, c), 0, $"{arch}: the adapted model after merging");
        for (int i = 0; i < plainWeights.Count; i++) Assert.Equal(plainWeights[i], lm.Parameters[i].ToArray());
        var first = adapter.Modules[0];
        float[] w = merged.Parameters[first.Module + ".weight"].ToArray(), w0 = lm.Parameters[first.Module + ".weight"].ToArray();
        int r = first.A.Dim(0), inF = first.A.Dim(1);
        for (int o = 0; o < 3; o++)
        {
            for (int k = 0; k < 3; k++)
            {
                double delta = 0;
                for (int q = 0; q < r; q++) delta += first.B.Span[o * r + q] * first.A.Span[q * inF + k];
                Assert.Equal(w0[o * inF + k] + adapter.Scaling * delta, w[o * inF + k], 1e-6);
            }
        }
    }

    [Fact]
    public void AddLora_follows_peft_names_shapes_and_init_and_leaves_the_output_alone()
    {
        var lm = Base("llama");
        var c = ReadCase("llama");
        float[] before = Logits(lm, c);
        int baseCount = lm.Parameters.Count;
        var adapter = lm.AddLora(new LoraConfig());
        Assert.Equal(8, adapter.Config.Rank);
        Assert.Equal(2.0, adapter.Config.Scaling); // alpha 16 / r 8
        Assert.Equal(["q_proj", "k_proj", "v_proj", "o_proj"], adapter.Config.TargetModules);
        Assert.Equal(2 * 4, adapter.Modules.Count);
        Assert.Equal(baseCount + 2 * 4 * 2, lm.Parameters.Count);
        var a = lm.Parameters["model.layers.0.self_attn.q_proj.lora_A.weight"];
        var b = lm.Parameters["model.layers.0.self_attn.k_proj.lora_B.weight"];
        Assert.Equal([8, 32], a.Shape);
        Assert.Equal([16, 8], b.Shape); // 2 kv heads x 8
        Assert.Equal([8, 32], lm.Parameters["model.layers.1.self_attn.o_proj.lora_A.weight"].Shape);
        double bound = 1 / Math.Sqrt(32);
        Assert.All(a.ToArray(), v => Assert.InRange(v, -bound, bound));
        Assert.True(a.ToArray().Select(Math.Abs).Max() > bound / 2);
        Assert.All(adapter.Modules, m => Assert.All(m.B.ToArray(), v => Assert.Equal(0f, v)));
        Assert.Equal(lm.Parameters.Where(IsLora), lm.Parameters.Trainable);
        Assert.All(lm.Parameters.Trainable, p => Assert.True(ParameterSet.Glob("*lora_*", p.Name)));
        Assert.Equal(before, Logits(lm, c)); // B = 0: the same logits, bit for bit

        var gpt2 = Base("gpt2");
        var g = gpt2.AddLora(new LoraConfig { Rank = 4 });
        Assert.Equal(["c_attn", "attn.c_proj"], g.Config.TargetModules);
        Assert.Equal([96, 4], gpt2.Parameters["transformer.h.0.attn.c_attn.lora_B.weight"].Shape); // fused q|k|v: 3C rows
        Assert.Equal([4, 32], gpt2.Parameters["transformer.h.1.attn.c_proj.lora_A.weight"].Shape);
        Assert.False(gpt2.Parameters.TryGet("transformer.h.0.mlp.c_proj.lora_A.weight", out _));
        var all = Base("gpt2").AddLora(new LoraConfig { TargetModules = [LoraConfig.AllLinear] });
        Assert.Equal(["c_attn", "c_proj", "c_fc"], all.Config.TargetModules);
        Assert.Equal(2 * 4, all.Modules.Count);
        var mlp = Base("gpt2").AddLora(new LoraConfig { TargetModules = ["mlp.c_proj"] });
        Assert.Equal(["transformer.h.0.mlp.c_proj", "transformer.h.1.mlp.c_proj"], mlp.Modules.Select(m => m.Module));
        Assert.Equal(7 * 2, Base("llama").AddLora(new LoraConfig { TargetModules = [LoraConfig.AllLinear] }).Modules.Count);
    }

    [Fact]
    public void Training_moves_only_the_adapter_and_lowers_the_loss()
    {
        var c = ReadCase("llama");
        var lm = Base("llama");
        var frozen = lm.Parameters.Select(p => p.ToArray()).ToList();
        lm.AddLora(new LoraConfig { Rank = 4, Alpha = 8, Dropout = 0.1f, TargetModules = [LoraConfig.AllLinear] });
        lm.Parameters.EnableGrads();
        var opt = new AdamWOptimizer(lm.Parameters, new TrainConfig { LearningRate = 1e-2f, WeightDecay = 0f });
        Assert.Equal(lm.Parameters.Where(IsLora).Count(), opt.Parameters.Count);
        double first = 0, last = 0;
        for (int step = 0; step < 8; step++)
        {
            var g = new Graph();
            var loss = lm.Loss(g, c.Tokens, c.Targets, c.B, c.T, dropoutSeed: (ulong)step);
            if (step == 0) first = loss.Item();
            last = loss.Item();
            g.Backward(loss);
            opt.Step(1e-2f, 1f);
            lm.Parameters.ZeroGrads();
        }
        Assert.True(last < first - 0.1, $"loss {first} -> {last}");
        for (int i = 0; i < frozen.Count; i++)
        {
            Assert.Equal(frozen[i], lm.Parameters[i].ToArray());
            Assert.Null(lm.Parameters[i].Grad);
        }
        Assert.All(lm.Lora!.Modules, m => Assert.Contains(m.B.ToArray(), v => v != 0f));
    }

    [Fact]
    public void The_trainer_trains_only_the_adapter_of_a_qwen2_model()
    {
        string hfFolder = Path.Combine(Fixtures, "arch", "qwen2", "hf");
        string text = Path.Combine(dir, "stories.txt");
        File.WriteAllText(text, Quill.Data.StoryCorpus.Generate(20_000, 3));
        string data = Path.Combine(dir, "data");
        Quill.Data.DatasetPreparer.Prepare(new Quill.Data.PrepareOptions([text], hfFolder, data));
        using var loaded = ModelLoader.Load(hfFolder);
        var lm = LanguageModel.FromWeights(loaded.Weights);
        var before = lm.Parameters.Select(p => p.ToArray()).ToList();
        var adapter = lm.AddLora(new LoraConfig { Rank = 4, TargetModules = [LoraConfig.AllLinear] });
        var run = new RunConfig { Train = new TrainConfig { BatchSize = 4, SeqLen = 32, MaxSteps = 10, LearningRate = 2e-3f, WarmupSteps = 2, EvalEvery = 10, EvalBatches = 2, CheckpointEvery = 10 } };
        using (var trainer = new Trainer(run, new TrainOptions(data, Path.Combine(dir, "run")), lm))
        {
            Assert.Equal(12 * adapter.ElementCount, trainer.TrainingStateBytes); // gradient + AdamW moments for A and B only
            trainer.Run();
        }
        for (int i = 0; i < before.Count; i++)
        {
            Assert.Equal(before[i], lm.Parameters[i].ToArray());
            Assert.Null(lm.Parameters[i].Grad);
        }
        Assert.All(adapter.Modules, m => Assert.Contains(m.B.ToArray(), v => v != 0f));

        // the trained adapter, saved and loaded onto a fresh base, runs the same
        adapter.Save(Path.Combine(dir, "trained"));
        var again = LanguageModel.FromWeights(loaded.Weights);
        again.LoadLora(Path.Combine(dir, "trained"));
        int[] tokens = [.. Enumerable.Range(0, 16).Select(i => (i * 13 + 1) % lm.Spec.VocabSize)];
        Assert.Equal(lm.Forward(new Graph(recording: false), tokens, 1, 16).ToArray(), again.Forward(new Graph(recording: false), tokens, 1, 16).ToArray());
    }

    [Fact]
    public void Adapter_dropout_applies_only_while_training()
    {
        var c = ReadCase("llama");
        var lm = Base("llama");
        var adapter = lm.AddLora(new LoraConfig { Rank = 4, Dropout = 0.5f });
        foreach (var m in adapter.Modules) new Rng(9).FillNormal(m.B.Span, 0.1);
        float[] Train(ulong seed) => lm.Forward(new Graph(), c.Tokens, c.B, c.T, seed).ToArray();
        float[] eval = Logits(lm, c);
        Assert.Equal(Train(3), Train(3));
        Assert.NotEqual(Train(3), Train(4));
        Assert.NotEqual(eval, Train(3));
        Assert.Equal(eval, Logits(lm, c));
    }

    [Fact]
    public void An_interleaved_rope_model_permutes_q_and_k_rows_of_lora_B_to_and_from_hf_order()
    {
        // the llama fixture rebuilt as GGUF / llama2.c would run it: interleaved RoPE, q/k rows in Meta's order
        var hf = Base("llama");
        var cfg = ModelConfig.FromSpec(hf.Spec);
        cfg.RopeStyle = "interleaved";
        var meta = LanguageModel.Create(cfg);
        Assert.Equal(Quill.Kernels.RopeStyle.Interleaved, meta.Spec.RopeStyle);
        var s = hf.Spec;
        foreach (var p in hf.Parameters)
        {
            float[] v = p.ToArray();
            int heads = p.Name.EndsWith("q_proj.weight", StringComparison.Ordinal) ? s.Heads : p.Name.EndsWith("k_proj.weight", StringComparison.Ordinal) ? s.KvHeads : 0;
            if (heads > 0) v = PeftAdapterFiles.PermuteRows(v, p.Dim(1), heads, s.HeadDim, s.EffectiveRotaryDim, toHf: false);
            v.CopyTo(meta.Parameters[p.Name].Span);
        }
        var c = ReadCase("llama");
        Close.Assert(Logits(hf, c), Logits(meta, c), 1e-5, "interleaved copy of the base");

        var adapter = meta.LoadLora(c.Adapter);
        Close.Assert(c.Logits, Logits(meta, c), 1e-4, "interleaved model + PEFT adapter vs torch");
        var hfAdapter = hf.LoadLora(c.Adapter);
        var q = adapter.Modules.First(m => m.Slot == WeightSlot.Q);
        Assert.NotEqual(hfAdapter.Modules.First(m => m.Slot == WeightSlot.Q).B.ToArray(), q.B.ToArray()); // rows moved
        Assert.Equal(hfAdapter.Modules.First(m => m.Slot == WeightSlot.Q).A.ToArray(), q.A.ToArray());   // A did not

        string saved = Path.Combine(dir, "meta");
        adapter.Save(saved);
        using var want = SafeTensorsFile.Open(Path.Combine(c.Adapter, PeftAdapterFiles.WeightsFile));
        using var got = SafeTensorsFile.Open(Path.Combine(saved, PeftAdapterFiles.WeightsFile));
        foreach (string n in want.Names) Assert.Equal(want.ReadSingle(n), got.ReadSingle(n));
    }

    private static void AssertOneLine<T>(Action act, params string[] mentions) where T : QuillException
    {
        var e = Assert.Throws<T>(act);
        Assert.DoesNotContain('\n', e.Message);
        foreach (string m in mentions) Assert.Contains(m, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Bad_configs_fail_in_one_line()
    {
        var llama = Base("llama");
        AssertOneLine<InvalidConfigException>(() => llama.AddLora(new LoraConfig { TargetModules = ["c_attn"] }), "'c_attn'", "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, all-linear");
        AssertOneLine<InvalidConfigException>(() => Base("gpt2").AddLora(new LoraConfig { TargetModules = ["q_proj"] }), "'q_proj'", "c_attn, c_proj, attn.c_proj, c_fc, mlp.c_proj");
        AssertOneLine<InvalidConfigException>(() => llama.AddLora(new LoraConfig { Rank = 0 }), "lora r");
        AssertOneLine<InvalidConfigException>(() => llama.AddLora(new LoraConfig { Dropout = 1f }), "lora_dropout");
        AssertOneLine<InvalidConfigException>(() => Base("phi3").AddLora(new LoraConfig()), "phi3", "qkv_proj");
        Assert.Null(llama.Lora);
        Assert.All(llama.Parameters, p => Assert.True(p.RequiresGrad)); // nothing was frozen by the refusals
        AssertOneLine<InvalidConfigException>(() => llama.MergeLora(), "no LoRA adapter");

        llama.AddLora(new LoraConfig());
        AssertOneLine<InvalidConfigException>(() => llama.AddLora(new LoraConfig()), "already carries");
        AssertOneLine<InvalidConfigException>(() => llama.ToWeights(), "MergeLora");
    }

    [Fact]
    public void Bad_adapter_folders_fail_in_one_line_and_leave_the_model_alone()
    {
        var adapter = Path.Combine(Fixtures, "lora", "llama", "adapter");
        var lm = Base("llama");
        string missing = Path.Combine(dir, "nope");
        AssertOneLine<InvalidFileException>(() => lm.LoadLora(missing), missing, "not found");

        string configOnly = Path.Combine(dir, "config-only");
        Directory.CreateDirectory(configOnly);
        File.Copy(Path.Combine(adapter, PeftAdapterFiles.ConfigFile), Path.Combine(configOnly, PeftAdapterFiles.ConfigFile));
        AssertOneLine<InvalidFileException>(() => lm.LoadLora(configOnly), PeftAdapterFiles.WeightsFile, "not found");
        File.WriteAllBytes(Path.Combine(configOnly, "adapter_model.bin"), [0]);
        AssertOneLine<InvalidFileException>(() => lm.LoadLora(configOnly), "adapter_model.bin", "safetensors");

        string weightsOnly = Path.Combine(dir, "weights-only");
        Directory.CreateDirectory(weightsOnly);
        File.Copy(Path.Combine(adapter, PeftAdapterFiles.WeightsFile), Path.Combine(weightsOnly, PeftAdapterFiles.WeightsFile));
        AssertOneLine<InvalidFileException>(() => lm.LoadLora(weightsOnly), PeftAdapterFiles.ConfigFile, "not found");

        // a llama adapter on gpt2: a module the base lacks
        var gpt2 = Base("gpt2");
        AssertOneLine<InvalidFileException>(() => gpt2.LoadLora(adapter), "model.layers.0.self_attn.q_proj", "lacks", "another model");
        Assert.Null(gpt2.Lora);

        // an adapter of a wider llama: same names, other shapes
        var wide = LanguageModel.Create(new ModelConfig { Arch = "llama", VocabSize = 97, NLayer = 2, NHead = 4, NKvHead = 2, NEmbd = 48, BlockSize = 64, MlpHidden = 64 });
        string other = Path.Combine(dir, "wide");
        wide.AddLora(new LoraConfig()).Save(other);
        AssertOneLine<InvalidFileException>(() => lm.LoadLora(other), "lora_A.weight", "[8, 48]", "[8, 32]", "another model");

        // a DoRA adapter
        string dora = Path.Combine(dir, "dora");
        Directory.CreateDirectory(dora);
        File.Copy(Path.Combine(adapter, PeftAdapterFiles.WeightsFile), Path.Combine(dora, PeftAdapterFiles.WeightsFile));
        var cfg = JsonNode.Parse(File.ReadAllText(Path.Combine(adapter, PeftAdapterFiles.ConfigFile)))!;
        cfg["use_dora"] = true;
        File.WriteAllText(Path.Combine(dora, PeftAdapterFiles.ConfigFile), cfg.ToJsonString());
        AssertOneLine<InvalidFileException>(() => lm.LoadLora(dora), "use_dora");

        Assert.Null(lm.Lora);
        Assert.All(lm.Parameters, p => Assert.True(p.RequiresGrad));
        lm.LoadLora(adapter); // and the good one still loads
        Assert.NotNull(lm.Lora);
    }
}
