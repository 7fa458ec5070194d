// Every architecture the loaders claim, met in files Quill did not write: tiny random qwen2, mistral, phi3 and gpt2
// models, each as a Hugging Face folder (config.json + safetensors, qwen2 sharded) and as a GGUF v3 file with
// llama.cpp's names, all made by fixtures/make_arch_fixtures.py with reference logits from a PyTorch forward of the
// weights as each file stores them. Through ModelLoader.Load (the CLI's entry) each must report the right
// architecture and sizes, give the torch logits, decode with its KV cache as the full pass computes, and bring the
// right tokenizer. Also: a sharded checkpoint opened by its index, a GGUF v2 header, Mistral's sliding window
// capping the usable context, and broken GGUF files (an unsupported architecture, an unsupported tensor type,
// LongRoPE factors, data cut short) raising one-line errors naming the file.
using System.Text.Json.Nodes;
using Quill.Models;
using Quill.Tensors;
using Quill.Formats.Gguf;
using Quill.Inference;
using Quill.Kernels;
using Quill.Quantization;
using Quill.Tests.Support;

namespace Quill.Tests.Inference;

public sealed class ArchitectureTests : IDisposable
{
    private static readonly string Root = Path.Combine(AppContext.BaseDirectory, "fixtures", "arch");
    private readonly string dir = Directory.CreateTempSubdirectory("quill-arch-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    public static TheoryData<string, string> Forms()
    {
        var d = new TheoryData<string, string>();
        foreach (string arch in new[] { "qwen2", "mistral", "phi3", "gpt2" })
        {
            d.Add(arch, "hf");
            d.Add(arch, "gguf");
        }
        return d;
    }

    private static JsonNode Reference(string arch) => JsonNode.Parse(File.ReadAllText(Path.Combine(Root, arch, "reference.json")))!;

    private static string ModelPath(string arch, string form) => form == "hf" ? Path.Combine(Root, arch, "hf") : Path.Combine(Root, arch, arch + ".gguf");

    private static int[] Ints(JsonNode? array) => [.. array!.AsArray().Select(n => n!.GetValue<int>())];

    private static float[] ReferenceLogits(string arch, string form)
    {
        byte[] raw = File.ReadAllBytes(Path.Combine(Root, arch, $"logits_{form}.bin"));
        var f = new float[raw.Length / 4];
        Buffer.BlockCopy(raw, 0, f, 0, raw.Length);
        return f;
    }

    private static float[] AllLogits(InferenceModel model, int[] tokens)
    {
        var engine = new InferenceEngine(model);
        var all = new float[tokens.Length * model.Spec.VocabSize];
        engine.Forward(engine.CreateCache(), tokens, all, allLogits: true);
        return all;
    }

    private static bool HasQ8(InferenceModel m) =>
        m.Layers.SelectMany(l => new[] { l.Wqkv, l.Wq, l.Wk, l.Wv, l.Wo, l.Gate, l.Up, l.Down }).Append(m.Classifier).Any(w => w?.Type == GgmlType.Q8_0);

    [Theory]
    [MemberData(nameof(Forms))]
    public void Loads_with_the_sizes_its_metadata_states(string arch, string form)
    {
        var r = Reference(arch);
        using var model = ModelLoader.Load(ModelPath(arch, form));
        var s = model.Spec;
        Assert.Equal(arch, s.Arch);
        bool gpt2 = arch == "gpt2";
        Assert.Equal((gpt2 ? NormKind.LayerNorm : NormKind.RmsNorm, gpt2 ? MlpKind.Gelu : MlpKind.SwiGlu, gpt2 ? PositionKind.Learned : PositionKind.Rope),
            (s.Norm, s.Mlp, s.Positions));
        Assert.Equal((gpt2 || arch == "qwen2", gpt2, gpt2, gpt2), (s.QkvBias, s.OutBias, s.MlpBias, s.NormBias));
        Assert.Equal((r["dim"]!.GetValue<int>(), r["layers"]!.GetValue<int>(), r["heads"]!.GetValue<int>(), r["head_dim"]!.GetValue<int>(), r["hidden"]!.GetValue<int>(), r["vocab"]!.GetValue<int>()),
            (s.Dim, s.Layers, s.Heads, s.HeadDim, s.Hidden, s.VocabSize));
        Assert.Equal(arch == "gpt2" ? s.Heads : r["kv_heads"]!.GetValue<int>(), s.KvHeads);
        Assert.Equal(r["norm_eps"]!.GetValue<double>(), s.NormEps, 1e-9);
        if (arch != "gpt2")
        {
            Assert.Equal(r["rope_theta"]!.GetValue<double>(), s.RopeTheta, 1e-3);
            Assert.Equal(r["rotary_dim"]!.GetValue<int>(), s.EffectiveRotaryDim);
            // llama.cpp permutes mistral's q/k rows for interleaved pairs; HF files and qwen2 / phi3 GGUF pair halves
            Assert.Equal(arch == "mistral" && form == "gguf" ? RopeStyle.Interleaved : RopeStyle.Half, s.RopeStyle);
        }
        // GGUF gpt2 carries its tied head as a separate copy (output.weight), as llama.cpp writes it
        bool shared = r["tied"]!.GetValue<bool>() && !(arch == "gpt2" && form == "gguf");
        Assert.Equal(shared, ReferenceEquals(model.Classifier, model.TokenEmbedding));
    }

    [Theory]
    [MemberData(nameof(Forms))]
    public void Logits_match_torch_and_cached_decode_matches_the_full_pass(string arch, string form)
    {
        int[] tokens = Ints(Reference(arch)["tokens"]);
        float[] expected = ReferenceLogits(arch, form);
        using var model = ModelLoader.Load(ModelPath(arch, form));
        int v = model.Spec.VocabSize, t = tokens.Length;
        Assert.Equal(t * v, expected.Length);
        double scale = expected.Max(Math.Abs);

        // The reference ran the very values the file stores (F16 / BF16 / Q8_0 dequantized), so the loaded weights,
        // run in float32, must give its logits up to float32 rounding: this is what the loader alone decides.
        using (var exact = model.Requantize(GgmlType.F32))
        {
            float[] got = AllLogits(exact, tokens);
            for (int i = 0; i < got.Length; i++)
                Assert.True(Math.Abs(got[i] - expected[i]) <= 1e-5 * (1 + Math.Abs(expected[i])), $"{arch} {form} (dequantized) logit {i}: {got[i]} vs torch {expected[i]}");
        }

        // As stored, the kernels add their own rounding: none to speak of for F32 / F16 / BF16 weights (converted to
        // float32 exactly); for Q8_0 matrices the int8 rounding of activations (1/254 of a block's largest value per
        // element), bounded as GgufQuantizedTests bounds Q8_0.
        var engine = new InferenceEngine(model);
        float[] full = AllLogits(model, tokens);
        bool q8 = HasQ8(model);
        double worst = 0;
        for (int i = 0; i < full.Length; i++) worst = Math.Max(worst, Math.Abs(full[i] - expected[i]) / (q8 ? scale : 1 + Math.Abs(expected[i])));
        Assert.True(worst <= (q8 ? 3e-2 : 2e-4), $"{arch} {form}: logits differ from torch by {worst} ({(q8 ? "of the logit scale " + scale : "relative")})");

        // a 3-token prompt, then one token at a time through the cache: each step's logits are the full pass's row
        // (the same kernels run both, up to summation order; Q8_0 rows are quantized per row either way)
        var cache = engine.CreateCache();
        var step = new float[v];
        engine.Forward(cache, tokens.AsSpan(0, 3), step);
        for (int p = 2; p < t; p++)
        {
            if (p > 2) engine.Forward(cache, tokens.AsSpan(p, 1), step);
            for (int i = 0; i < v; i++)
            {
                float want = full[p * v + i];
                Assert.True(Math.Abs(step[i] - want) <= (q8 ? 1e-3 * scale : 1e-5 * (1 + Math.Abs(want))), $"{arch} {form} position {p} logit {i}: cached {step[i]} vs full {want}");
            }
        }
        Assert.Equal(t, cache.Length);
    }

    [Theory]
    [MemberData(nameof(Forms))]
    public void Brings_its_own_tokenizer(string arch, string form)
    {
        var r = Reference(arch);
        using var model = ModelLoader.Load(ModelPath(arch, form));
        var tok = model.Tokenizer;
        Assert.NotNull(tok);
        // llama.cpp pads a GGUF vocabulary to the model's rows ([PAD300] ...); tokenizer.json lists the real tokens only
        Assert.Equal(form == "gguf" ? r["vocab"]!.GetValue<int>() : r["tokenizer_vocab"]!.GetValue<int>(), tok.VocabSize);
        string text = r["text"]!.GetValue<string>();
        int[] ids = tok.Encode(text);
        Assert.Equal(Ints(r["text_ids"]), ids);
        Assert.Equal(text, tok.Decode(ids));
        Assert.Equal(r["add_bos"]!.GetValue<bool>(), model.AddBos);
        int eos = r["eos"]!.GetValue<int>();
        Assert.True(tok.EosId == eos || model.ExtraStopIds.Contains(eos), $"{arch} {form}: end of sequence {eos} is neither the tokenizer's EOS ({tok.EosId}) nor a stop id");
        if (form == "gguf") Assert.Equal(r["bos"]!.GetValue<int>(), tok.BosId);
        if (form == "gguf" && r["chat_template"] is JsonNode tpl) Assert.Equal(tpl.GetValue<string>(), model.ChatTemplate);
    }

    [Fact]
    public void Sharded_checkpoint_loads_through_its_index_like_its_folder()
    {
        string hf = ModelPath("qwen2", "hf");
        Assert.False(File.Exists(Path.Combine(hf, "model.safetensors")));
        Assert.Equal(2, Directory.GetFiles(hf, "model-*-of-00002.safetensors").Length);
        int[] tokens = Ints(Reference("qwen2")["tokens"]);
        using var byFolder = ModelLoader.Load(hf);
        using var byIndex = ModelLoader.Load(Path.Combine(hf, "model.safetensors.index.json"));
        var a = new float[byFolder.Spec.VocabSize];
        var b = new float[a.Length];
        var ea = new InferenceEngine(byFolder);
        var eb = new InferenceEngine(byIndex);
        ea.Forward(ea.CreateCache(), tokens, a);
        eb.Forward(eb.CreateCache(), tokens, b);
        Assert.Equal(a, b);
        // weights from both shards: layer 0 lies in the first, layer 1 and the final norm in the second
        Assert.Equal(2, byIndex.Layers.Count);
    }

    [Theory]
    [InlineData("hf")]
    [InlineData("gguf")]
    public void A_sliding_window_shorter_than_the_context_is_computed_as_a_window(string form)
    {
        // mistral: window 32, trained context 64. The whole context runs; past 32 tokens a query sees only the window,
        // in the engine's cached decode as in the trainable model's masked attention, and that differs from full
        // attention over the same weights.
        using var model = ModelLoader.Load(ModelPath("mistral", form));
        Assert.Equal(32, model.Spec.SlidingWindow);
        Assert.Equal(64, model.Spec.MaxContext);
        using var exact = model.Requantize(Quill.Quantization.GgmlType.F32);
        var engine = new InferenceEngine(exact, 64);
        Assert.Equal(64, engine.ContextLength);
        int v = model.Spec.VocabSize;
        int[] tokens = [.. Enumerable.Range(0, 60).Select(i => (i * 37 + 5) % v)];
        var cached = new float[v];
        var cache = engine.CreateCache();
        engine.Forward(cache, tokens.AsSpan(0, 40), new float[v]);
        for (int t = 40; t < tokens.Length; t++) engine.Forward(cache, tokens.AsSpan(t, 1), cached);
        var lm = Quill.Models.LanguageModel.FromWeights(exact.Weights);
        float[] train = lm.Forward(new Quill.Autograd.Graph(recording: false), tokens, 1, tokens.Length).ToArray();
        float[] last = train.AsSpan((tokens.Length - 1) * v, v).ToArray();
        Close.Assert(last, cached, 1e-4, "cached decode vs the training forward past the window");
        using var full = new InferenceModel(new Quill.Models.ModelWeights(exact.Spec with { SlidingWindow = 0 }, exact.Weights.TokenEmbedding, null,
            exact.Weights.Layers, exact.Weights.FinalNorm, null, exact.Weights.Classifier, [], "no window"));
        var fe = new InferenceEngine(full, 64);
        var unwindowed = new float[v];
        fe.Forward(fe.CreateCache(), tokens, unwindowed);
        Assert.True(last.Zip(unwindowed).Max(p => Math.Abs(p.First - p.Second)) > 1e-4, "the window changes the last logits");
    }

    [Theory]
    [InlineData("phi3", "hf")]
    [InlineData("phi3", "gguf")]
    [InlineData("qwen2", "hf")]
    public void A_window_no_shorter_than_the_context_or_switched_off_changes_nothing(string arch, string form)
    {
        using var model = ModelLoader.Load(ModelPath(arch, form));
        int ctx = Reference(arch)["context"]!.GetValue<int>();
        Assert.Equal(arch == "phi3" ? ctx : 0, model.Spec.SlidingWindow); // qwen2: use_sliding_window false
        Assert.Equal(ctx, model.Spec.MaxContext);
        Assert.Equal(ctx, new InferenceEngine(model, ctx).ContextLength);
    }

    [Fact]
    public void Gguf_v2_header_loads_as_v3_does()
    {
        // v2 and v3 share the layout (64-bit counts); only the version field differs
        byte[] bytes = File.ReadAllBytes(ModelPath("gpt2", "gguf"));
        Assert.Equal(3, BitConverter.ToInt32(bytes, 4));
        bytes[4] = 2;
        string v2 = Path.Combine(dir, "v2.gguf");
        File.WriteAllBytes(v2, bytes);
        int[] tokens = Ints(Reference("gpt2")["tokens"]);
        using var a = ModelLoader.Load(v2);
        using var b = ModelLoader.Load(ModelPath("gpt2", "gguf"));
        Assert.Equal(AllLogits(b, tokens), AllLogits(a, tokens));
    }

    [Fact]
    public void Unsupported_architecture_names_the_file_and_the_architecture()
    {
        string path = Path.Combine(dir, "falcon.gguf");
        new GgufWriter().SetString("general.architecture", "falcon").SetUInt32("falcon.block_count", 1)
            .AddTensor("token_embd.weight", [32, 4], new float[128]).Write(path);
        var e = Assert.ThrowsAny<QuillException>(() => ModelLoader.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("'falcon'", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Unsupported_tensor_type_names_the_file_the_tensor_and_the_type()
    {
        // mistral.gguf again, one matrix re-typed Q8_1 (a ggml type Quill does not run; same block of 32 values)
        string path = Path.Combine(dir, "q8_1.gguf");
        RewriteGguf(ModelPath("mistral", "gguf"), path, (w, t) =>
        {
            if (t.Name == "blk.1.ffn_gate.weight")
                w.AddTensor(t.Name, GgmlType.Q8_1, t.Dimensions, new byte[t.Dimensions[0] * t.Dimensions[1] / 32 * GgmlTypeInfo.BlockBytes(GgmlType.Q8_1)]);
            else w.AddTensor(t.Name, t.Type, t.Dimensions, t.Data);
        });
        var e = Assert.ThrowsAny<QuillException>(() => ModelLoader.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("blk.1.ffn_gate.weight", e.Message, StringComparison.Ordinal);
        Assert.Contains("Q8_1", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Longrope_factors_are_read_and_one_without_the_other_is_refused()
    {
        // phi3.gguf (which carries phi3.rope.scaling.original_context_length, as llama.cpp's converter writes) with the
        // rope_factors_long / _short tensors of a LongRoPE file: short factors of 1 within the original context run the
        // plain model (LongRopeTests runs real factors against PyTorch and llama.cpp)
        string path = Path.Combine(dir, "longrope.gguf");
        int pairs = Reference("phi3")["rotary_dim"]!.GetValue<int>() / 2;
        RewriteGguf(ModelPath("phi3", "gguf"), path, (w, t) => w.AddTensor(t.Name, t.Type, t.Dimensions, t.Data), w =>
        {
            w.AddTensor("rope_factors_long.weight", [pairs], Enumerable.Repeat(4f, pairs).ToArray());
            w.AddTensor("rope_factors_short.weight", [pairs], Enumerable.Repeat(1f, pairs).ToArray());
        });
        using (var plain = ModelLoader.Load(ModelPath("phi3", "gguf")))
        using (var lr = ModelLoader.Load(path))
        {
            Assert.Equal(Enumerable.Repeat(4f, pairs), lr.Spec.LongRope!.LongFactors);
            Assert.Equal(1.0, lr.Spec.LongRope.AttentionFactor); // context_length == original: no magnitude
            int[] tokens = [.. Enumerable.Range(0, 10).Select(i => (i * 7 + 1) % plain.Spec.VocabSize)];
            float[] Run(InferenceModel m)
            {
                var e = new InferenceEngine(m);
                var logits = new float[tokens.Length * m.Spec.VocabSize];
                e.Forward(e.CreateCache(), tokens, logits, allLogits: true);
                return logits;
            }
            Assert.Equal(Run(plain), Run(lr));
        }
        string half = Path.Combine(dir, "longrope-half.gguf");
        RewriteGguf(ModelPath("phi3", "gguf"), half, (w, t) => w.AddTensor(t.Name, t.Type, t.Dimensions, t.Data), w =>
            w.AddTensor("rope_factors_long.weight", [pairs], Enumerable.Repeat(4f, pairs).ToArray()));
        var e = Assert.ThrowsAny<QuillException>(() => ModelLoader.Load(half));
        Assert.Contains(half, e.Message, StringComparison.Ordinal);
        Assert.Contains("both rope_factors_long and rope_factors_short", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void Gguf_cut_in_the_middle_of_its_tensor_data_names_the_file()
    {
        string whole = ModelPath("qwen2", "gguf");
        long dataStart;
        using (var g = GgufFile.Open(whole)) dataStart = g.DataOffset;
        byte[] all = File.ReadAllBytes(whole);
        string cut = Path.Combine(dir, "cut.gguf");
        File.WriteAllBytes(cut, all.AsSpan(0, (int)(dataStart + (all.Length - dataStart) / 2)).ToArray());
        var e = Assert.ThrowsAny<QuillException>(() => ModelLoader.Load(cut));
        Assert.Contains(cut, e.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("garbage text\n", "\"garb\"")]
    [InlineData("\u0001\u0002\u0003\u0004rest", "01020304")]
    [InlineData("", "nothing")]
    public void A_gguf_named_file_without_the_magic_says_it_is_not_gguf(string content, string shown)
    {
        string path = Path.Combine(dir, "not-really.gguf");
        File.WriteAllText(path, content);
        var e = Assert.ThrowsAny<QuillException>(() => ModelLoader.Load(path));
        Assert.Contains(path, e.Message, StringComparison.Ordinal);
        Assert.Contains("not a GGUF file", e.Message, StringComparison.Ordinal);
        Assert.Contains(shown, e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("llama2.c", e.Message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', e.Message);
    }

    private sealed record TensorCopy(string Name, GgmlType Type, IReadOnlyList<long> Dimensions, byte[] Data);

    /// <summary>Copies a GGUF file's metadata and tensors (each through addTensor) to a new file, then appends extras.</summary>
    private static void RewriteGguf(string from, string to, Action<GgufWriter, TensorCopy> addTensor, Action<GgufWriter>? extra = null)
    {
        var w = new GgufWriter();
        using (var src = GgufFile.Open(from))
        {
            foreach (string key in src.MetadataKeys) w.Set(key, src.Metadata[key]);
            foreach (var t in src.Tensors) addTensor(w, new TensorCopy(t.Name, t.Type, t.Dimensions, src.GetTensorData(t).ToArray()));
        }
        extra?.Invoke(w);
        w.Write(to);
    }
}
