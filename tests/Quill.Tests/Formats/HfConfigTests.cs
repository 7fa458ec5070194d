// Parses small config.json texts in the shapes Llama 3.1, Mistral, Qwen2 and GPT-2 publish, and checks the
// defaults and the errors for missing or malformed fields.
using Quill.Formats;

namespace Quill.Tests.Formats;

public class HfConfigTests
{
    private const string Llama31 = """
    {
      "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
      "num_attention_heads": 32, "num_hidden_layers": 32, "num_key_value_heads": 8, "vocab_size": 128256,
      "max_position_embeddings": 131072, "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "hidden_act": "silu",
      "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                       "original_max_position_embeddings": 8192, "rope_type": "llama3"},
      "tie_word_embeddings": false, "bos_token_id": 128000, "eos_token_id": [128001, 128008, 128009],
      "torch_dtype": "bfloat16", "attention_bias": false
    }
    """;

    [Fact]
    public void Llama31_with_llama3_rope_scaling()
    {
        var c = HfConfig.Parse(Llama31);
        Assert.Equal("llama", c.ModelType);
        Assert.Equal("LlamaForCausalLM", c.Architecture);
        Assert.Equal(4096, c.HiddenSize);
        Assert.Equal(32, c.NumLayers);
        Assert.Equal(32, c.NumHeads);
        Assert.Equal(8, c.NumKvHeads);
        Assert.Equal(128, c.HeadDim);
        Assert.Equal(14336, c.IntermediateSize);
        Assert.Equal(128256, c.VocabSize);
        Assert.Equal(131072, c.MaxPositions);
        Assert.Equal(500000.0, c.RopeTheta);
        Assert.Equal(new HfRopeScaling("llama3", 8.0, 1.0, 4.0, 8192), c.RopeScaling);
        Assert.Equal(1e-5, c.NormEps);
        Assert.True(c.UsesRmsNorm);
        Assert.False(c.TieWordEmbeddings);
        Assert.False(c.AttentionBias);
        Assert.Equal(128000, c.BosTokenId);
        Assert.Equal([128001, 128008, 128009], c.EosTokenIds);
        Assert.Equal("bfloat16", c.TorchDtype);
    }

    [Fact]
    public void Mistral_defaults_and_sliding_window()
    {
        var c = HfConfig.Parse("""
        {"model_type": "mistral", "hidden_size": 4096, "intermediate_size": 14336, "num_attention_heads": 32,
         "num_hidden_layers": 32, "num_key_value_heads": 8, "vocab_size": 32000, "max_position_embeddings": 32768,
         "rms_norm_eps": 1e-05, "rope_theta": 10000.0, "sliding_window": 4096, "eos_token_id": 2, "rope_scaling": null}
        """);
        var d = HfConfig.Parse("""{"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 2, "vocab_size": 10, "intermediate_size": 8, "rope_scaling": {"rope_type": "default"}}""");
        Assert.Equal(new HfRopeScaling("default", 1.0, null, null, null), d.RopeScaling);
        Assert.Equal(4096, c.SlidingWindow);
        Assert.Null(c.RopeScaling);
        Assert.Equal([2], c.EosTokenIds);
        Assert.False(c.TieWordEmbeddings);
        Assert.Equal("silu", c.HiddenAct);
    }

    [Fact]
    public void Qwen2_has_qkv_bias_and_tied_embeddings()
    {
        var c = HfConfig.Parse("""
        {"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896, "intermediate_size": 4864,
         "num_attention_heads": 14, "num_hidden_layers": 24, "num_key_value_heads": 2, "vocab_size": 151936,
         "max_position_embeddings": 32768, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0, "sliding_window": 32768,
         "use_sliding_window": false, "tie_word_embeddings": true, "hidden_act": "silu"}
        """);
        Assert.True(c.AttentionBias);
        Assert.True(c.TieWordEmbeddings);
        Assert.Null(c.SlidingWindow);
        Assert.Equal(64, c.HeadDim);
        Assert.Equal(7, c.NumHeads / c.NumKvHeads);
        Assert.Equal(1e-6, c.NormEps);
    }

    [Fact]
    public void Gpt2_uses_its_own_key_names_and_defaults()
    {
        var c = HfConfig.Parse("""
        {"architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "n_embd": 768, "n_layer": 12, "n_head": 12,
         "n_positions": 1024, "n_ctx": 1024, "vocab_size": 50257, "layer_norm_epsilon": 1e-05,
         "activation_function": "gelu_new", "n_inner": null, "bos_token_id": 50256, "eos_token_id": 50256}
        """);
        Assert.Equal(768, c.HiddenSize);
        Assert.Equal(12, c.NumLayers);
        Assert.Equal(12, c.NumKvHeads);
        Assert.Equal(3072, c.IntermediateSize);
        Assert.Equal(1024, c.MaxPositions);
        Assert.Equal(0, c.RopeTheta);
        Assert.False(c.UsesRmsNorm);
        Assert.True(c.TieWordEmbeddings);
        Assert.True(c.AttentionBias);
        Assert.Equal("gelu_new", c.HiddenAct);
    }

    [Theory]
    [InlineData("""{"model_type": "llama", "num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": 10, "intermediate_size": 8}""", "hidden_size")]
    [InlineData("""{"model_type": "llama", "hidden_size": "big", "num_hidden_layers": 2, "num_attention_heads": 2, "vocab_size": 10, "intermediate_size": 8}""", "hidden_size")]
    [InlineData("""{"model_type": "bert", "hidden_size": 8}""", "model_type")]
    [InlineData("""{"hidden_size": 8}""", "model_type")]
    [InlineData("""{"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 3, "vocab_size": 10, "intermediate_size": 8}""", "num_key_value_heads")]
    [InlineData("""{"model_type": "llama", "hidden_size": 10, "num_hidden_layers": 2, "num_attention_heads": 4, "vocab_size": 10, "intermediate_size": 8}""", "head_dim")]
    [InlineData("""{"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 0, "num_attention_heads": 4, "vocab_size": 10, "intermediate_size": 8}""", "layer count")]
    [InlineData("""{"model_type": "llama", "hidden_size": 8, "num_hidden_layers": 1, "num_attention_heads": 4, "vocab_size": 10, "intermediate_size": 8, "rope_scaling": {"rope_type": "llama3", "factor": 8.0}}""", "low_freq_factor")]
    public void Bad_configs_name_the_field(string json, string field)
    {
        var e = Assert.ThrowsAny<QuillException>(() => HfConfig.Parse(json, "my/config.json"));
        Assert.Contains("my/config.json", e.Message, StringComparison.Ordinal);
        Assert.Contains(field, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Invalid_json_is_an_invalid_file()
    {
        Assert.Throws<InvalidFileException>(() => HfConfig.Parse("{\"model_type\": ", "x.json"));
        Assert.Throws<InvalidFileException>(() => HfConfig.Load("/no/such/dir/config.json"));
    }
}
