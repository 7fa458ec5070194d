// llama-2-tiny-random.gguf (F16 weights, llama arch, q/k rows permuted for interleaved RoPE) through the GGUF
// loader, against the same weights written by Quill as a Hugging Face folder (config.json + F16 safetensors with
// q/k rows put back in HF's rotate-half order) and loaded through the HF path: logits must agree. Also corrupt and
// truncated GGUF files raising one-line errors, and the GGUF tokenizer and metadata being picked up.
using Quill.Formats.SafeTensors;
using Quill.Inference;
using Quill.Tests.Support;

namespace Quill.Tests.Inference;

public sealed class GgufModelTests : IDisposable
{
    private const string Tiny = "gguf-models/llama-2-tiny-random.gguf";
    private readonly string dir = Directory.CreateTempSubdirectory("quill-gguf-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    [TestDataFact(Tiny)]
    public void Tiny_random_gguf_equals_its_weights_as_hf_safetensors()
    {
        using var gguf = ModelLoader.Load(TestData.PathOf(Tiny));
        var s = gguf.Spec;
        Assert.Equal(("llama", 8, 1, 2, 32000), (s.Arch, s.Dim, s.Layers, s.Heads, s.VocabSize));
        Assert.NotNull(gguf.Tokenizer);
        Assert.True(gguf.AddBos);

        WriteHfFolder(gguf, dir);
        using var hf = ModelLoader.Load(dir);
        Assert.Equal(Quill.Kernels.RopeStyle.Half, hf.Spec.RopeStyle);

        int[] tokens = [1, 15043, 3186, 29892, 920, 526, 366, 29973, 306, 626];
        int v = s.VocabSize;
        var a = new float[tokens.Length * v];
        var b = new float[tokens.Length * v];
        var ea = new InferenceEngine(gguf, 64);
        var eb = new InferenceEngine(hf, 64);
        ea.Forward(ea.CreateCache(), tokens, a, allLogits: true);
        eb.Forward(eb.CreateCache(), tokens, b, allLogits: true);
        for (int i = 0; i < a.Length; i++) Assert.True(Math.Abs(a[i] - b[i]) <= 1e-5f * (1 + Math.Abs(a[i])), $"logit {i}: {a[i]} vs {b[i]}");

        // and decode step by step equals the batch
        var c = ea.CreateCache();
        var step = new float[v];
        for (int t = 0; t < tokens.Length; t++)
        {
            ea.Forward(c, tokens.AsSpan(t, 1), step);
            for (int i = 0; i < v; i++) Assert.True(Math.Abs(a[t * v + i] - step[i]) <= 1e-4f * (1 + Math.Abs(step[i])), $"t {t} logit {i}");
        }
    }

    /// <summary>Writes the model's weights under HF Llama names, q/k rows un-permuted (GGUF interleaved -> HF half).</summary>
    private static void WriteHfFolder(InferenceModel m, string dir)
    {
        var s = m.Spec;
        var l = m.Layers[0];
        float[] Unpermute(float[] w, int heads)
        {
            int d = s.HeadDim, c = s.Dim;
            var r = new float[w.Length];
            for (int h = 0; h < heads; h++)
            {
                for (int i = 0; i < d / 2; i++)
                {
                    for (int j = 0; j < 2; j++)
                        Array.Copy(w, (h * d + 2 * i + j) * c, r, (h * d + j * d / 2 + i) * c, c);
                }
            }
            return r;
        }
        var t = new List<SafeTensor>
        {
            new("model.embed_tokens.weight", [s.VocabSize, s.Dim], m.TokenEmbedding.ToFloats()),
            new("lm_head.weight", [s.VocabSize, s.Dim], m.Classifier.ToFloats()),
            new("model.norm.weight", [s.Dim], m.FinalNorm),
            new("model.layers.0.input_layernorm.weight", [s.Dim], l.AttnNorm),
            new("model.layers.0.post_attention_layernorm.weight", [s.Dim], l.MlpNorm),
            new("model.layers.0.self_attn.q_proj.weight", [s.QDim, s.Dim], Unpermute(l.Wq!.ToFloats(), s.Heads)),
            new("model.layers.0.self_attn.k_proj.weight", [s.KvDim, s.Dim], Unpermute(l.Wk!.ToFloats(), s.KvHeads)),
            new("model.layers.0.self_attn.v_proj.weight", [s.KvDim, s.Dim], l.Wv!.ToFloats()),
            new("model.layers.0.self_attn.o_proj.weight", [s.Dim, s.QDim], l.Wo.ToFloats()),
            new("model.layers.0.mlp.gate_proj.weight", [s.Hidden, s.Dim], l.Gate!.ToFloats()),
            new("model.layers.0.mlp.up_proj.weight", [s.Hidden, s.Dim], l.Up!.ToFloats()),
            new("model.layers.0.mlp.down_proj.weight", [s.Dim, s.Hidden], l.Down!.ToFloats()),
        };
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), t, null, SafeTensorDtype.F16);
        File.WriteAllText(Path.Combine(dir, "config.json"), $$"""
            {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": {{s.Dim}}, "num_hidden_layers": 1,
             "num_attention_heads": {{s.Heads}}, "num_key_value_heads": {{s.KvHeads}}, "intermediate_size": {{s.Hidden}},
             "vocab_size": {{s.VocabSize}}, "max_position_embeddings": {{s.MaxContext}}, "rms_norm_eps": {{s.NormEps}},
             "rope_theta": {{s.RopeTheta}}, "tie_word_embeddings": false}
            """);
    }

    [TestDataFact(Tiny)]
    public void Truncated_gguf_is_a_one_line_error()
    {
        byte[] all = File.ReadAllBytes(TestData.PathOf(Tiny));
        string cut = Path.Combine(dir, "cut.gguf");
        File.WriteAllBytes(cut, all.AsSpan(0, all.Length - 1000).ToArray());
        var e = Assert.ThrowsAny<QuillException>(() => ModelLoader.Load(cut));
        Assert.DoesNotContain('\n', e.Message);
        Assert.Contains("cut.gguf", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Garbage_and_missing_files_are_one_line_errors()
    {
        string junk = Path.Combine(dir, "junk.bin");
        File.WriteAllBytes(junk, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]);
        var e = Assert.ThrowsAny<QuillException>(() => ModelLoader.Load(junk));
        Assert.DoesNotContain('\n', e.Message);
        Assert.ThrowsAny<QuillException>(() => ModelLoader.Load(Path.Combine(dir, "absent.gguf")));
    }

    [TestDataFact("llamacpp-vocab-tests/ggml-vocab-gpt-neox.gguf")]
    public void Unsupported_architecture_is_named()
    {
        var e = Assert.ThrowsAny<QuillException>(() => ModelLoader.Load(TestData.PathOf("llamacpp-vocab-tests/ggml-vocab-gpt-neox.gguf")));
        Assert.Contains("gptneox", e.Message, StringComparison.Ordinal);
    }
}
