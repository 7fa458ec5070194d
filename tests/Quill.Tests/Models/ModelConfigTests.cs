using Quill.Models;
using Quill.Training;

namespace Quill.Tests.Models;

public class ModelConfigTests
{
    [Fact]
    public void Width_not_divisible_by_heads_names_the_fields()
    {
        var e = Assert.Throws<InvalidConfigException>(() => new ModelConfig { NEmbd = 100, NHead = 6 }.Validate());
        Assert.Contains("n_embd 100", e.Message);
        Assert.Contains("n_head 6", e.Message);
    }

    [Fact]
    public void Gqa_groups_that_do_not_divide_are_refused()
    {
        var e = Assert.Throws<InvalidConfigException>(() => new ModelConfig { Arch = "llama", NEmbd = 96, NHead = 6, NKvHead = 4 }.Validate());
        Assert.Contains("n_kv_head", e.Message);
    }

    [Fact]
    public void Presets_have_the_documented_shapes_and_parameter_counts()
    {
        var s = Presets.Get("shakespeare-char").Model;
        Assert.Equal((65, 4, 4, 256, 256), (s.VocabSize, s.NLayer, s.NHead, s.NEmbd, s.BlockSize));
        var m = Presets.Get("gpt-mini").Model;
        Assert.Equal((50304, 6, 6, 384, 256), (m.VocabSize, m.NLayer, m.NHead, m.NEmbd, m.BlockSize));
        Assert.True(Presets.Get("llama-mini").Model.IsLlama);
        var gpt2 = Presets.Get("gpt2-124m").Model;
        // GPT-2 small with the padded vocabulary: 124M parameters (tied head counted once).
        Assert.InRange(gpt2.ParameterCount(), 124_000_000, 125_000_000);
        Assert.Throws<InvalidConfigException>(() => Presets.Get("gpt-5"));
    }

    [Fact]
    public void Parameter_count_matches_the_built_model()
    {
        foreach (var cfg in new[]
        {
            new ModelConfig { Arch = "gpt2", VocabSize = 50, NLayer = 2, NHead = 2, NEmbd = 8, BlockSize = 8 },
            new ModelConfig { Arch = "llama", VocabSize = 50, NLayer = 2, NHead = 4, NKvHead = 2, NEmbd = 16, BlockSize = 8, MlpHidden = 24 },
            new ModelConfig { Arch = "llama", VocabSize = 50, NLayer = 1, NHead = 2, NEmbd = 8, BlockSize = 8, TieEmbeddings = true },
        })
        {
            Assert.Equal(cfg.ParameterCount(), LanguageModel.Create(cfg).Parameters.ElementCount);
        }
    }

    [Fact]
    public void Config_files_in_yaml_and_json_load_and_typos_are_refused()
    {
        string dir = Directory.CreateTempSubdirectory("quill-cfg").FullName;
        string yaml = Path.Combine(dir, "run.yaml");
        File.WriteAllText(yaml, "model:\n  arch: llama\n  vocab_size: 100\n  n_layer: 2\n  n_head: 4\n  n_kv_head: 2\n  n_embd: 32\n  block_size: 64\ntrain:\n  batch_size: 4\n  learning_rate: 0.001\n");
        var cfg = RunConfig.Load(yaml);
        Assert.Equal(("llama", 2, 2, 4), (cfg.Model.Arch, cfg.Model.KvHeads, cfg.Model.NLayer, cfg.Train.BatchSize));
        string json = Path.Combine(dir, "run.json");
        File.WriteAllText(json, "{\"model\": {\"arch\": \"gpt2\", \"n_layers\": 3}}");
        var e = Assert.Throws<InvalidConfigException>(() => RunConfig.Load(json));
        Assert.Contains("n_layers", e.Message);
        File.WriteAllText(json, "{\"model\": {\"n_embd\": 30, \"n_head\": 4}}");
        Assert.Throws<InvalidConfigException>(() => RunConfig.Load(json));
    }
}
