// The Hugging Face export as transformers would run it: fixtures/export/{gpt2,llama}/ hold what Quill writes for two
// seeded models (config.json, model.safetensors) and the logits make_export_fixtures.py computes from those files
// alone with a PyTorch forward built from the config (no Quill code, no transformers). The test re-exports the same
// models, checks Quill still writes exactly those bytes, and that Quill's logits of the export match PyTorch's.
// To remake the folders after a deliberate format change: QUILL_WRITE_EXPORT_FIXTURES=<repo>/tests/Quill.Tests/fixtures/export
// dotnet test --filter ExportFixtureTests, then run the python script.
using Quill.Inference;
using Quill.Models;
using Quill.Tokenization;

namespace Quill.Tests.Inference;

public sealed class ExportFixtureTests
{
    private const string Text = "the cat sat on a mat";

    private static InferenceModel Seeded(string arch)
    {
        var tok = new CharTokenizer(" abcdefghijklmnopqrst".Select(c => (int)c));
        var cfg = arch == "gpt2"
            ? new ModelConfig { Arch = "gpt2", VocabSize = 24, NLayer = 2, NHead = 2, NEmbd = 32, BlockSize = 32 }
            : new ModelConfig { Arch = "llama", VocabSize = 24, NLayer = 2, NHead = 4, NKvHead = 2, NEmbd = 32, BlockSize = 32, MlpHidden = 64 };
        var lm = LanguageModel.Create(cfg, 11);
        foreach (var p in lm.Parameters)
        {
            if (p.Rank < 2) continue;
            var s = p.Span;
            for (int i = 0; i < s.Length; i++) s[i] *= 10f; // opinions, not flat logits
        }
        var model = InferenceModel.FromLanguageModel(lm);
        model.Tokenizer = tok;
        return model;
    }

    [Theory]
    [InlineData("gpt2")]
    [InlineData("llama")]
    public void Pytorch_forward_from_the_exported_config_and_safetensors_gives_Quills_logits(string arch)
    {
        using var model = Seeded(arch);
        string dir = Directory.CreateTempSubdirectory("quill-export-fixture").FullName;
        try
        {
            HfExport.Write(model, dir, Quill.Formats.SafeTensors.SafeTensorDtype.F32);
            int[] tokens = model.Tokenizer!.Encode(Text);
            string fixture = Path.Combine(AppContext.BaseDirectory, "fixtures", "export", arch);
            if (Environment.GetEnvironmentVariable("QUILL_WRITE_EXPORT_FIXTURES") is { Length: > 0 } target)
            {
                string to = Path.Combine(target, arch);
                Directory.CreateDirectory(to);
                foreach (string f in new[] { "config.json", "model.safetensors" }) File.Copy(Path.Combine(dir, f), Path.Combine(to, f), overwrite: true);
                File.WriteAllText(Path.Combine(to, "tokens.json"), $"{{\"text\": \"{Text}\", \"tokens\": [{string.Join(", ", tokens)}]}}\n");
                return;
            }
            Assert.Equal(File.ReadAllBytes(Path.Combine(fixture, "config.json")), File.ReadAllBytes(Path.Combine(dir, "config.json")));
            Assert.Equal(File.ReadAllBytes(Path.Combine(fixture, "model.safetensors")), File.ReadAllBytes(Path.Combine(dir, "model.safetensors")));

            using var back = ModelLoader.Load(dir);
            int v = back.Spec.VocabSize;
            var mine = new float[tokens.Length * v];
            var engine = new InferenceEngine(back, 32);
            engine.Forward(engine.CreateCache(), tokens, mine, allLogits: true);
            byte[] raw = File.ReadAllBytes(Path.Combine(fixture, "logits.bin"));
            var torch = new float[raw.Length / 4];
            Buffer.BlockCopy(raw, 0, torch, 0, raw.Length);
            Assert.Equal(mine.Length, torch.Length);
            double worst = 0, scale = torch.Max(Math.Abs);
            for (int i = 0; i < mine.Length; i++) worst = Math.Max(worst, Math.Abs(mine[i] - torch[i]));
            Assert.True(scale > 1, $"logits too flat to mean anything ({scale})");
            Assert.True(worst < 1e-4 * scale, $"largest logit difference {worst:G3} (logit scale {scale:G3})");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
