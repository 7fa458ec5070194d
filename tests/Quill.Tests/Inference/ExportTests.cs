// quill export, proven by the tools that read the files: llama.cpp (LLamaSharp, test-only) loads Quill's GGUF
// exports of a gpt2 and a llama trained by `quill train` and of a LoRA fine-tune merged by `quill finetune merge`,
// and greedily continues a prompt with the same 64 tokens as Quill on the same file, for F32, F16 and Q8_0 (gpt2's
// Q8_0 at llama.cpp's defaults: the first 24, then the same token wherever Quill's top-2 margin is clear of llama.cpp's
// half-precision attention and GELU; without those roundings all 64 tokens and every logit to 1e-4); it
// tokenizes text as Quill does. Quill -> GGUF -> Quill and Quill -> HF -> Quill give back every weight bit for bit
// (F32) or its F16 rounding (F16). Bad input is one line and leaves no file.
using Quill.Formats.Gguf;
using Quill.Inference;
using Quill.Kernels;
using Quill.Models;
using Quill.Quantization;
using Quill.Tensors;
using Quill.Tests.Cli;
using Quill.Tests.Support;
using Quill.Tests.Training;

namespace Quill.Tests.Inference;

/// <summary>Trains the models once for all export tests (a few seconds of CPU each).</summary>
public sealed class ExportModels : IDisposable
{
    public ExportModels()
    {
        Dir = TrainerTests.PrepareStories(60_000);
        string data = Path.Combine(Dir, "data");
        Gpt2 = Train("gpt2", """{ "arch": "gpt2", "vocab_size": 96, "n_layer": 2, "n_head": 2, "n_embd": 64, "block_size": 128 }""", data);
        Llama = Train("llama", """{ "arch": "llama", "vocab_size": 96, "n_layer": 2, "n_head": 4, "n_kv_head": 2, "n_embd": 64, "block_size": 128, "mlp_hidden": 192 }""", data);
        string sft = Path.Combine(Dir, "sft.jsonl");
        string[] animals = ["cat", "dog", "bird", "fox"];
        File.WriteAllLines(sft, Enumerable.Range(0, 24).Select(i => $$"""{"prompt": "Tell me about the {{animals[i % 4]}}.\n", "completion": "The {{animals[i % 4]}} sat on a mat and was happy."}"""));
        string cfg = Path.Combine(Dir, "ft.yaml");
        File.WriteAllText(cfg, "train:\n  batch_size: 4\n  seq_len: 64\n  max_steps: 12\n  learning_rate: 0.01\n  warmup_steps: 2\n  eval_every: 0\n  checkpoint_every: 0\n");
        string adapter = Adapter = Path.Combine(Dir, "lora");
        var ft = CliProcess.Run("finetune", "--base", Llama, "--data", sft, "--out", adapter, "--config", cfg, "--method", "lora", "--val-fraction", "0", "--lora-targets", "all-linear");
        Assert.True(ft.Exit == 0, ft.Err);
        FineTuned = Path.Combine(Dir, "merged");
        var merge = CliProcess.Run("finetune", "merge", "--base", Llama, "--adapter", adapter, "--out", FineTuned);
        Assert.True(merge.Exit == 0, merge.Err);
    }

    public string Dir { get; }

    public void Dispose() => Directory.Delete(Dir, recursive: true);

    public string Gpt2 { get; }

    public string Llama { get; }

    public string FineTuned { get; }

    /// <summary>The LoRA run FineTuned was merged from (base: Llama).</summary>
    public string Adapter { get; }

    private string Train(string name, string model, string data)
    {
        string cfg = Path.Combine(Dir, name + ".json");
        File.WriteAllText(cfg, $$"""
            { "model": {{model}},
              "train": { "batch_size": 8, "max_steps": 600, "learning_rate": 0.01, "warmup_steps": 20, "eval_every": 0, "checkpoint_every": 0 } }
            """);
        string run = Path.Combine(Dir, name);
        var r = CliProcess.Run("train", "--config", cfg, "--data", data, "--out", run);
        Assert.True(r.Exit == 0, r.Err);
        return run;
    }
}

public sealed class ExportTests(ExportModels models) : IClassFixture<ExportModels>
{
    private const string Prompt = "Once upon a time, there was a little ";

    /// <summary>A top-2 logit margin below which llama.cpp's half-precision roundings may swap the pick.</summary>
    private const float NearTie = 0.01f;

    private string Model(string which) => which switch { "gpt2" => models.Gpt2, "llama" => models.Llama, _ => models.FineTuned };

    [Theory]
    [InlineData("gpt2", "f32")]
    [InlineData("gpt2", "f16")]
    [InlineData("gpt2", "q8_0")]
    [InlineData("llama", "f32")]
    [InlineData("llama", "f16")]
    [InlineData("llama", "q8_0")]
    [InlineData("finetuned", "f32")]
    [InlineData("finetuned", "f16")]
    [InlineData("finetuned", "q8_0")]
    public void Llama_cpp_continues_the_export_greedily_with_Quills_64_tokens(string which, string dtype)
    {
        string gguf = Path.Combine(models.Dir, $"{which}-{dtype}.gguf");
        var r = CliProcess.Run("export", "--model", Model(which), "--out", gguf, "--dtype", dtype);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("wrote " + gguf, r.Out);

        using var quill = ModelLoader.Load(gguf);
        Assert.NotNull(quill.Tokenizer);
        int[] prompt = quill.Tokenizer!.Encode(Prompt);
        // gpt2 Q8_0 runs llama.cpp with its default settings (see below); the others with its attention at full
        // precision (flash attention off, F32 KV cache). With the defaults, the fine-tuned model's Q8_0 file parted
        // from Quill at a near tie in one training of it and not in another: a test of the file must not hang on
        // which way llama.cpp's half-precision attention rounds.
        bool defaults = which == "gpt2" && dtype == "q8_0";
        using var cpp = defaults ? LlamaCpp.Open(gguf) : LlamaCpp.Open(gguf, f32Cache: true, flashAttention: false);
        Assert.Equal(quill.Spec.VocabSize, cpp.VocabSize);
        Assert.Equal(prompt, cpp.Tokenize(Prompt));

        int[] want = cpp.Greedy(prompt, 64);
        Assert.True(want.Distinct().Count() > 4, "the continuation should not be one repeated token: " + string.Join(",", want));
        var engine = new InferenceEngine(quill, 128);
        if (!defaults)
        {
            int[] got = LlamaCppOracleTests.GreedyQuill(engine, prompt, 64, quill.Spec.VocabSize);
            if (want.SequenceEqual(got)) return;
            // Two correct engines may part only where llama.cpp's own top two logits are closer than their rounding
            // differences: its f16 files multiply half-precision activations, and gpt2's GELU comes from a
            // half-precision table (logits 0.001-0.008 apart from Quill's). One training of the gpt2 model had such a
            // tie (top-2 margins 0.0010 and 0.0014, the picks swapped) at generated token 13 of the f16 file.
            int first = 0;
            while (want[first] == got[first]) first++;
            float[] at = cpp.Logits([.. prompt, .. want.AsSpan(0, first)])[^1];
            float[] top = [.. at.OrderDescending().Take(2)];
            Assert.True(top[0] - top[1] < NearTie,
                $"parted at generated token {first}, where llama.cpp's margin is {top[0] - top[1]:F4}\nllama.cpp: {quill.Tokenizer.Decode(want)}\nQuill:     {quill.Tokenizer.Decode(got)}");
            return;
        }
        // gpt2 in Q8_0 against llama.cpp's default settings: a near tie. llama.cpp runs attention as flash attention
        // (its default, "auto", turns it on for the CPU), which rounds to half precision, and GELU from ggml's
        // half-precision table; the logits then differ from Quill's by up to 0.19 (with or without an F32 KV cache),
        // and at generated token 26 llama.cpp's own top-2 margin is 0.014, so the free runs part there. Switch both
        // roundings off and the two engines agree to 4e-6 and on all 64 tokens (the next test). Here: the first 24
        // free-running tokens equal, and teacher-forced on llama.cpp's 64 tokens, the same pick wherever Quill's
        // margin is clear of that rounding.
        int[] free = LlamaCppOracleTests.GreedyQuill(engine, prompt, 64, quill.Spec.VocabSize);
        Assert.True(want.AsSpan(0, 24).SequenceEqual(free.AsSpan(0, 24)), $"llama.cpp: {quill.Tokenizer.Decode(want)}\nQuill:     {quill.Tokenizer.Decode(free)}");
        int[] seq = [.. prompt, .. want];
        float[][] theirs = cpp.Logits(seq);
        int v = quill.Spec.VocabSize, clear = 0;
        var mine = new float[v];
        var cache = engine.CreateCache();
        for (int t = 0; t < seq.Length - 1; t++)
        {
            engine.Forward(cache, [seq[t]], mine);
            if (t < prompt.Length - 1) continue;
            float[] sorted = [.. mine.OrderDescending()];
            int pick = Array.IndexOf(mine, sorted[0]);
            double diff = 0;
            for (int i = 0; i < v; i++) diff = Math.Max(diff, Math.Abs(mine[i] - theirs[t][i]));
            Assert.True(diff < 0.3, $"position {t}: logits differ by {diff:F3}");
            if (sorted[0] - sorted[1] < 0.3) continue;
            clear++;
            Assert.True(pick == seq[t + 1], $"position {t}: llama.cpp picks {seq[t + 1]}, Quill {pick} with a margin of {sorted[0] - sorted[1]:F3}");
        }
        Assert.True(clear >= 40, $"only {clear} of 64 positions have a clear winner");
    }

    [Fact]
    public void Gpt2_q8_0_gives_llama_cpps_64_greedy_tokens_and_logits_without_its_half_precision_roundings()
    {
        // The previous test's gpt2 Q8_0 file, with llama.cpp's attention at full precision (flash attention off, F32
        // KV cache) and Quill given ggml's half-precision GELU table: then nothing but float rounding separates the
        // engines (the int8 products are exact), and every logit of 64 free-running tokens agrees.
        string gguf = Path.Combine(models.Dir, "gpt2-q8_0-exact.gguf");
        var r = CliProcess.Run("export", "--model", models.Gpt2, "--out", gguf, "--dtype", "q8_0");
        Assert.True(r.Exit == 0, r.Err);
        using var quill = ModelLoader.Load(gguf);
        int[] prompt = quill.Tokenizer!.Encode(Prompt);
        using var cpp = LlamaCpp.Open(gguf, f32Cache: true, flashAttention: false);
        int[] want = cpp.Greedy(prompt, 64);
        var engine = new InferenceEngine(quill, 128) { GeluOverride = GgmlGelu.Forward };
        int[] got = LlamaCppOracleTests.GreedyQuill(engine, prompt, 64, quill.Spec.VocabSize);
        Assert.True(want.SequenceEqual(got), $"llama.cpp: {quill.Tokenizer.Decode(want)}\nQuill:     {quill.Tokenizer.Decode(got)}");

        float[][] theirs = cpp.Logits([.. prompt, .. want]);
        double shared = MaxLogitDifference(engine, [.. prompt, .. want], theirs);
        Assert.True(shared < 1e-4, $"with ggml's GELU table the logits differ by {shared:E2}");
        // and the table is what it takes: with Quill's own GELU (the tanh formula in float) they differ by far more
        engine.GeluOverride = null;
        double own = MaxLogitDifference(engine, [.. prompt, .. want], theirs);
        Assert.True(own > 1e-3, $"with Quill's GELU the logits differ by only {own:E2}");
    }

    private static double MaxLogitDifference(InferenceEngine engine, int[] seq, float[][] theirs)
    {
        int v = engine.Model.Spec.VocabSize;
        var mine = new float[v];
        var cache = engine.CreateCache();
        double max = 0;
        for (int t = 0; t < seq.Length - 1; t++)
        {
            engine.Forward(cache, [seq[t]], mine);
            for (int i = 0; i < v; i++) max = Math.Max(max, Math.Abs(mine[i] - theirs[t][i]));
        }
        return max;
    }

    [Theory]
    [InlineData("gpt2", "f32")]
    [InlineData("gpt2", "f16")]
    [InlineData("llama", "f32")]
    [InlineData("llama", "f16")]
    public void Quill_to_gguf_to_quill_gives_back_every_weight(string which, string dtype)
    {
        using var original = ModelLoader.Load(Model(which));
        string gguf = Path.Combine(models.Dir, $"roundtrip-{which}-{dtype}.gguf");
        ModelExport.Export(original, gguf, ExportFormat.Gguf, dtype);
        using var back = ModelLoader.Load(gguf);
        // llama.cpp's llama pairs rotary dims as neighbours: Quill's half-paired q and k rows come back permuted
        bool permuted = original.Spec.RopeStyle == RopeStyle.Half && original.Spec.UsesRope;
        Assert.Equal(permuted ? RopeStyle.Interleaved : original.Spec.RopeStyle, back.Spec.RopeStyle);
        AssertSameWeights(original.Weights, back.Weights, dtype == "f16", permuted);
        Assert.Equal(original.Tokenizer!.Encode(Prompt), back.Tokenizer!.Encode(Prompt));

        // and the model computes the same thing (rotation order differs, so to float rounding)
        var a = Logits(original);
        var b = Logits(back);
        if (dtype == "f32") for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) < 1e-4, $"logit {i}: {a[i]} vs {b[i]}");
    }

    [Theory]
    [InlineData("gpt2", "f32")]
    [InlineData("gpt2", "f16")]
    [InlineData("llama", "f32")]
    [InlineData("llama", "bf16")]
    [InlineData("finetuned", "f32")]
    public void Quill_to_hf_to_quill_gives_back_every_weight_bit_for_bit(string which, string dtype)
    {
        using var original = ModelLoader.Load(Model(which));
        string dir = Path.Combine(models.Dir, $"hf-{which}-{dtype}");
        var r = CliProcess.Run("export", "--model", Model(which), "--format", "hf", "--out", dir, "--dtype", dtype);
        Assert.True(r.Exit == 0, r.Err);
        foreach (string f in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "generation_config.json" })
            Assert.True(File.Exists(Path.Combine(dir, f)), f);
        using var back = ModelLoader.Load(dir);
        Assert.Equal(original.Spec with { Arch = back.Spec.Arch }, back.Spec with { Arch = back.Spec.Arch });
        AssertSameWeights(original.Weights, back.Weights, dtype != "f32" ? dtype : null, permuted: false, roundVectors: true);
        Assert.Equal(original.Tokenizer!.Encode(Prompt), back.Tokenizer!.Encode(Prompt));
        if (dtype == "f32") Assert.Equal(Logits(original), Logits(back));
    }

    [Fact]
    public void A_sharded_hf_export_has_an_index_and_loads_the_same()
    {
        using var original = ModelLoader.Load(models.Llama);
        string dir = Path.Combine(models.Dir, "hf-sharded");
        HfExport.Write(original, dir, Quill.Formats.SafeTensors.SafeTensorDtype.F32, shardBytes: 40_000);
        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors.index.json")));
        Assert.False(File.Exists(Path.Combine(dir, "model.safetensors")));
        Assert.True(Directory.GetFiles(dir, "model-0*-of-0*.safetensors").Length > 2);
        using var back = ModelLoader.Load(dir);
        AssertSameWeights(original.Weights, back.Weights, null, permuted: false);
    }

    [Fact]
    public void Q4_k_m_follows_llama_cpps_mix_and_llama_cpp_loads_it()
    {
        string gguf = Path.Combine(models.Dir, "llama-q4km.gguf");
        var r = CliProcess.Run("export", "--model", models.Llama, "--out", gguf, "--dtype", "q4_k_m");
        Assert.True(r.Exit == 0, r.Err);
        using (var g = GgufFile.Open(gguf))
        {
            Assert.Equal(15u, (uint)g.GetInt32("general.file_type"));
            // rows of 64 values are not whole 256-value super-blocks: llama.cpp's fallbacks (Q4_K -> Q5_0, Q6_K -> Q8_0)
            Assert.Equal(GgmlType.Q5_0, g.GetTensor("blk.0.attn_q.weight").Type);
            Assert.Equal(GgmlType.Q5_0, g.GetTensor("blk.0.attn_v.weight").Type);
            Assert.Equal(GgmlType.Q8_0, g.GetTensor("blk.1.attn_v.weight").Type); // the last eighth gets more bits (Q6_K -> Q8_0)
            Assert.Equal(GgmlType.Q8_0, g.GetTensor("blk.1.ffn_down.weight").Type);
            Assert.Equal(GgmlType.Q8_0, g.GetTensor("output.weight").Type);
            Assert.Equal(GgmlType.F32, g.GetTensor("blk.0.attn_norm.weight").Type);
        }
        using var cpp = LlamaCpp.Open(gguf);
        Assert.Equal(96, cpp.VocabSize);
    }

    [Fact]
    public void Quill_quantize_prints_size_and_quality_and_llama_cpp_reads_the_file()
    {
        string text = Path.Combine(models.Dir, "heldout.txt");
        File.WriteAllText(text, Quill.Data.StoryCorpus.Generate(3000, 99));
        string gguf = Path.Combine(models.Dir, "llama-q8.gguf");
        var r = CliProcess.Run("quantize", "--model", models.Llama, "--type", "q8_0", "--out", gguf, "--eval-text", text, "--eval-tokens", "600");
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("wrote " + gguf, r.Out);
        Assert.Matches(@"size: [0-9.]+ MB, [0-9.]+x smaller than f32 \([0-9.]+ bits per weight\); weights' relative RMS error 0\.[0-9]+%", r.Out);
        var m = System.Text.RegularExpressions.Regex.Match(r.Out, @"quality on 5[0-9][0-9] tokens of heldout.txt: perplexity ([0-9.]+) -> ([0-9.]+) \(([-+0-9.]+)%\), mean KL ([0-9.]+) nats, top token agrees ([0-9.]+)%");
        Assert.True(m.Success, r.Out);
        Assert.True(Math.Abs(double.Parse(m.Groups[3].Value, System.Globalization.CultureInfo.InvariantCulture)) < 0.5, r.Out); // Q8_0 within 0.5% perplexity
        using var cpp = LlamaCpp.Open(gguf);
        Assert.Equal(96, cpp.VocabSize);
    }

    /// <summary>
    /// quill imatrix on story text, then quantize --imatrix: every matrix the importance matrix covers holds the bytes
    /// llama.cpp's own weighted quantizer (ggml_quantize_chunk with the same means as quant_weights) makes from the
    /// F32 export's rows, so llama-quantize --imatrix would write the same tensors.
    /// </summary>
    [Theory]
    [InlineData("q4_0")]
    [InlineData("q4_1")]
    [InlineData("q4_k_m")]
    public void Quantize_with_quill_imatrix_writes_llama_cpps_weighted_blocks(string type)
    {
        string text = Path.Combine(models.Dir, $"calib-{type}.txt");
        File.WriteAllText(text, Quill.Data.StoryCorpus.Generate(3000, 7));
        string imatrix = Path.Combine(models.Dir, $"imatrix-{type}.gguf");
        var r = CliProcess.Run("imatrix", "--model", models.Llama, "--data", text, "--ctx", "64", "--chunks", "8", "--out", imatrix);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Matches(@"wrote .*imatrix-q[0-9a-z_]+\.gguf \(14 matrices, 8 chunks of 64 tokens = 512 tokens\) in [0-9.]+s; perplexity of the chunks' second halves [0-9.]+", r.Out);
        string f32 = Path.Combine(models.Dir, $"imatrix-base-{type}.gguf"), q = Path.Combine(models.Dir, $"imatrix-{type}-q.gguf");
        Assert.Equal(0, CliProcess.Run("export", "--model", models.Llama, "--out", f32).Exit);
        r = CliProcess.Run("quantize", "--model", f32, "--type", type, "--imatrix", imatrix, "--out", q);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Matches("importance matrix " + Path.GetFileName(imatrix) + ": 1[24] matrices quantized with its weights", r.Out); // q4_k_m: layer 1's attn_v, ffn_down are Q8_0
        var means = Quill.Formats.ImatrixFile.Read(imatrix);
        using var src = GgufFile.Open(f32);
        using var dst = GgufFile.Open(q);
        int compared = 0;
        foreach (string name in means.Entries.Keys)
        {
            var t = dst.GetTensor(name);
            if (!WeightedQuant.UsesWeights(t.Type)) continue;
            int cols = (int)t.Dimensions[0], rows = (int)t.Dimensions[1];
            var theirs = GgmlQuantizer.Quantize(t.Type, src.ReadSingle(name), rows, cols, means.Mean(name));
            Assert.True(dst.GetTensorData(t).SequenceEqual(theirs), $"{name} ({t.Type}) differs from ggml's weighted quantization");
            compared++;
        }
        Assert.True(compared >= 8, $"only {compared} weighted matrices compared");
    }

    /// <summary>
    /// A random llama wide enough for whole 256-value super-blocks, so every K-quant is written as such: llama.cpp
    /// computes on each type Quill writes what Quill computes on the same file (Quill's block layouts checked by
    /// llama.cpp's own kernels, not only by hand-built blocks).
    /// </summary>
    [Theory]
    [InlineData("q8_0")]
    [InlineData("q4_0")]
    [InlineData("q4_1")]
    [InlineData("q5_0")]
    [InlineData("q5_1")]
    [InlineData("q4_k_m")]
    [InlineData("q5_k_m")]
    [InlineData("q6_k")]
    public void Llama_cpp_computes_Quills_logits_on_every_quantized_type(string type)
    {
        var cfg = new ModelConfig { Arch = "llama", VocabSize = 256, NLayer = 2, NHead = 4, NKvHead = 2, NEmbd = 256, BlockSize = 64, MlpHidden = 512 };
        var lm = LanguageModel.Create(cfg, 3);
        foreach (var p in lm.Parameters)
        {
            if (p.Rank < 2) continue;
            var sp = p.Span;
            for (int i = 0; i < sp.Length; i++) sp[i] *= 5f;
        }
        string gguf = Path.Combine(models.Dir, $"random-{type}.gguf");
        var plan = TensorTypePlan.Parse(type);
        using (var src = InferenceModel.FromLanguageModel(lm)) GgufExport.Write(src, gguf, plan);
        using var quill = ModelLoader.Load(gguf);
        Assert.Equal(plan.Default, quill.Layers[0].Wq!.Type);
        int[] tokens = [.. Enumerable.Range(0, 24).Select(i => (i * 37 + 5) % 256)];
        int v = 256;
        var mine = new float[tokens.Length * v];
        var engine = new InferenceEngine(quill, 64);
        var cache = engine.CreateCache();
        for (int t = 0; t < tokens.Length; t++) engine.Forward(cache, [tokens[t]], mine.AsSpan(t * v, v));
        using var cpp = LlamaCpp.Open(gguf);
        float[][] theirs = cpp.Logits(tokens);
        double worst = 0, scale = 0;
        int sameTop = 0;
        for (int t = 0; t < tokens.Length; t++)
        {
            int a = 0, b = 0;
            for (int i = 0; i < v; i++)
            {
                worst = Math.Max(worst, Math.Abs(mine[t * v + i] - theirs[t][i]));
                scale = Math.Max(scale, Math.Abs(theirs[t][i]));
                if (mine[t * v + i] > mine[t * v + a]) a = i;
                if (theirs[t][i] > theirs[t][b]) b = i;
            }
            if (a == b) sameTop++;
        }
        // A misread block layout gives unrelated logits; what is left is the two engines' 8-bit activation
        // rounding (2-4% of the logit range here for every type, Q8_0 included; 0.1% on F32 files).
        Assert.True(scale > 1, $"logits too flat ({scale})");
        Assert.True(worst < 0.06 * scale, $"{type}: largest logit difference {worst:G3} at logit scale {scale:G3}");
        Assert.True(sameTop >= tokens.Length - 2, $"{type}: the top token agrees at {sameTop} of {tokens.Length} positions (worst {worst:G4}, scale {scale:G4})");
    }

    [Fact]
    public void Llama_cpp_applies_the_gguf_lora_adapter_and_computes_the_merged_models_logits()
    {
        string baseGguf = Path.Combine(models.Dir, "base-f32.gguf"), adapterGguf = Path.Combine(models.Dir, "adapter.gguf");
        Assert.Equal(0, CliProcess.Run("export", "--model", models.Llama, "--out", baseGguf).Exit);
        var r = CliProcess.Run("export", "--model", models.Llama, "--adapter", models.Adapter, "--out", adapterGguf);
        Assert.True(r.Exit == 0, r.Err);
        Assert.Contains("GGUF LoRA adapter for llama", r.Out);
        using (var g = GgufFile.Open(adapterGguf))
        {
            Assert.Equal("adapter", g.GetString("general.type"));
            Assert.Equal("lora", g.GetString("adapter.type"));
            Assert.Equal(GgmlType.F32, g.GetTensor("blk.1.ffn_down.weight.lora_b").Type);
        }
        using var merged = ModelLoader.Load(models.FineTuned);
        int[] tokens = merged.Tokenizer!.Encode("Tell me about the cat.\nThe cat sat on a mat");
        int v = merged.Spec.VocabSize;
        var mine = new float[tokens.Length * v];
        var engine = new InferenceEngine(merged, 128);
        engine.Forward(engine.CreateCache(), tokens, mine, allLogits: true);

        // f32 K/V and no flash attention: with llama.cpp's CPU flash-attention path on, these logits differed from
        // Quill's by 0.6-1.3% (relative), depending on how the tiny model trained; with it off, by about 1e-5.
        using var plain = LlamaCpp.Open(baseGguf, f32Cache: true, flashAttention: false);
        float[][] without = plain.Logits(tokens);
        using var cpp = LlamaCpp.Open(baseGguf, f32Cache: true, flashAttention: false);
        cpp.AddLoraAdapter(adapterGguf);
        float[][] with = cpp.Logits(tokens);
        double worst = 0, moved = 0;
        for (int t = 0; t < tokens.Length; t++)
        {
            for (int i = 0; i < v; i++)
            {
                worst = Math.Max(worst, Math.Abs(mine[t * v + i] - with[t][i]) / (1 + Math.Abs(with[t][i])));
                moved = Math.Max(moved, Math.Abs(with[t][i] - without[t][i]));
            }
        }
        Assert.True(moved > 0.5, $"the adapter should change the logits (largest change {moved:G3})");
        Assert.True(worst < 1e-4, $"largest relative logit difference {worst:G3}");
    }

    [Theory]
    [InlineData("--dtype q3_k", "type 'q3_k' is unknown")]
    [InlineData("--format onnx", "--format 'onnx' is unknown")]
    [InlineData("--format hf --dtype q8_0", "not a Hugging Face type")]
    public void Bad_input_is_one_line_and_leaves_no_file(string extra, string expected)
    {
        string dir = Directory.CreateTempSubdirectory("quill-export-bad").FullName;
        string outPath = Path.Combine(dir, "out.gguf");
        var r = CliProcess.Run(["export", "--model", models.Gpt2, "--out", outPath, .. extra.Split(' ')]);
        Assert.Equal(1, r.Exit);
        string line = Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.Contains(expected, line);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [RootLinuxFact]
    public void A_full_disk_is_one_line_and_leaves_no_half_file()
    {
        string mount = Path.Combine(models.Dir, "small-disk");
        Directory.CreateDirectory(mount);
        FullDiskTests.Sh("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mount);
        try
        {
            foreach (string format in new[] { "gguf", "hf" })
            {
                string outPath = Path.Combine(mount, format == "gguf" ? "m.gguf" : "hf");
                var r = CliProcess.Run("export", "--model", models.Llama, "--format", format, "--out", outPath);
                Assert.Equal(1, r.Exit);
                string line = Assert.Single(r.Err.Split('\n', StringSplitOptions.RemoveEmptyEntries));
                Assert.Contains("No space left on device", line);
                Assert.False(File.Exists(Path.Combine(mount, "m.gguf")));
                Assert.Empty(Directory.GetFiles(mount, "*", SearchOption.AllDirectories)); // no temporary file left either
            }
        }
        finally
        {
            FullDiskTests.Sh("umount", mount);
        }
    }

    [Fact]
    public void An_architecture_gguf_cannot_express_is_refused_in_one_line()
    {
        var spec = new ModelSpec { Arch = "gpt2", Dim = 32, Layers = 1, Heads = 2, KvHeads = 2, HeadDim = 16, Hidden = 64, VocabSize = 8, MaxContext = 8, NormEps = 1e-5f, Positions = PositionKind.Learned, Norm = NormKind.LayerNorm, Mlp = MlpKind.Gelu };
        var e = Assert.Throws<QuillException>(() => GgufExport.ArchitectureOf(spec, "m"));
        Assert.Contains("GGUF cannot express it", e.Message);
    }

    private static float[] Logits(InferenceModel m)
    {
        int[] ids = m.Tokenizer!.Encode(Prompt);
        var engine = new InferenceEngine(m, 64);
        var logits = new float[m.Spec.VocabSize];
        engine.Forward(engine.CreateCache(), ids, logits);
        return logits;
    }

    private static void AssertSameWeights(ModelWeights a, ModelWeights b, bool f16, bool permuted) => AssertSameWeights(a, b, f16 ? "f16" : null, permuted);

    /// <summary>Every weight of b equals a's (rounded to <paramref name="rounded"/> when given), q/k rows permuted when asked.</summary>
    private static void AssertSameWeights(ModelWeights a, ModelWeights b, string? rounded, bool permuted, bool roundVectors = false)
    {
        var s = a.Spec;
        float[] Round(float[] v)
        {
            if (rounded == null) return v;
            var t = rounded == "f16" ? GgmlType.F16 : GgmlType.BF16;
            var bytes = new byte[GgmlTypeInfo.RowBytes(t, v.Length)];
            GgmlQuant.Quantize(t, v, bytes);
            var o = new float[v.Length];
            GgmlQuant.Dequantize(t, bytes, o);
            return o;
        }
        void Same(WeightMatrix x, WeightMatrix y, int[]? order = null)
        {
            float[] want = x.ToFloats(), got = y.ToFloats();
            if (order != null)
            {
                var p = new float[want.Length];
                for (int r = 0; r < x.Rows; r++) want.AsSpan(order[r] * x.Cols, x.Cols).CopyTo(p.AsSpan(r * x.Cols));
                want = p;
            }
            Assert.True(Round(want).SequenceEqual(got), $"{x.Name} differs from {y.Name}");
        }
        void SameVec(float[]? x, float[]? y) => Assert.Equal(x == null || !roundVectors ? x : Round(x), y);
        Same(a.TokenEmbedding, b.TokenEmbedding);
        Assert.Equal(a.Tied, b.Tied);
        SameVec(a.FinalNorm, b.FinalNorm);
        SameVec(a.FinalNormBias, b.FinalNormBias);
        if (a.PositionEmbedding != null) SameVec(a.PositionEmbedding[..(s.MaxContext * s.Dim)], b.PositionEmbedding![..(s.MaxContext * s.Dim)]);
        for (int i = 0; i < s.Layers; i++)
        {
            LayerWeights x = a.Layers[i], y = b.Layers[i];
            SameVec(x.AttnNorm, y.AttnNorm);
            SameVec(x.MlpNorm, y.MlpNorm);
            SameVec(x.AttnNormBias, y.AttnNormBias);
            SameVec(x.MlpNormBias, y.MlpNormBias);
            SameVec(x.QkvBias, y.QkvBias);
            SameVec(x.WoBias, y.WoBias);
            SameVec(x.UpBias, y.UpBias);
            SameVec(x.DownBias, y.DownBias);
            if (x.Wqkv != null) Same(x.Wqkv, y.Wqkv!);
            else
            {
                Same(x.Wq!, y.Wq!, permuted ? GgufExport.RowOrder(s, s.Heads) : null);
                Same(x.Wk!, y.Wk!, permuted ? GgufExport.RowOrder(s, s.KvHeads) : null);
                Same(x.Wv!, y.Wv!);
            }
            Same(x.Wo, y.Wo);
            if (x.Gate != null) Same(x.Gate, y.Gate!);
            Same(x.Up!, y.Up!);
            Same(x.Down!, y.Down!);
        }
    }
}

