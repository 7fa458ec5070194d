// quill export --format llama2c: stories260K exported back to llama2.c's legacy .bin is the original file byte for
// byte up to the RoPE tables run.c ignores (those within one float32 ulp), its tok512.bin is the original byte for
// byte, and the exported pair reproduces run.c's golden greedy text; a Quill llama that pairs RoPE dims by halves
// comes back with its q / k rows in run.c's order and the same logits; models llama2.c cannot run and quantized
// --dtype are refused in one line, leaving no file.
using System.Buffers.Binary;
using Quill.Autograd;
using Quill.Inference;
using Quill.Models;
using Quill.Tests.Cli;
using Quill.Tests.Support;

namespace Quill.Tests.Inference;

public sealed class Llama2cExportTests
{
    private const string Model = Llama2cGoldenTests.Model;
    private const string Tok = Llama2cGoldenTests.Tok;
    private const string Expected = Llama2cGoldenTests.Expected;

    [TestDataFact(Model, Tok, Expected)]
    public void Stories260K_round_trips_and_reproduces_run_c()
    {
        string dir = Directory.CreateTempSubdirectory("quill-l2c-").FullName;
        try
        {
            string outPath = Path.Combine(dir, "s.bin");
            var r = CliProcess.Run("export", "--model", TestData.PathOf(Model), "--tokenizer", TestData.PathOf(Tok), "--out", outPath);
            Assert.True(r.Exit == 0, r.Err);
            Assert.Contains("legacy llama2.c, 47 tensors: 47 F32", r.Out);
            byte[] a = File.ReadAllBytes(TestData.PathOf(Model)), b = File.ReadAllBytes(outPath);
            Assert.Equal(a.Length, b.Length);
            // header 7 x int32, then every weight up to rms_final: the freq_cis tables follow (seq_len x head_size/2, twice)
            int dim = 64, heads = 8, seq = 512, hs = dim / heads;
            int freqStart = a.Length - 2 * seq * (hs / 2) * 4;
            Assert.True(a.AsSpan(0, freqStart).SequenceEqual(b.AsSpan(0, freqStart)), "weights differ");
            for (int i = freqStart; i < a.Length; i += 4)
                Assert.Equal(BinaryPrimitives.ReadSingleLittleEndian(a.AsSpan(i)), BinaryPrimitives.ReadSingleLittleEndian(b.AsSpan(i)), 1e-6f);
            string tok = Path.Combine(dir, "tok512.bin");
            Assert.Equal(File.ReadAllBytes(TestData.PathOf(Tok)), File.ReadAllBytes(tok));
            Llama2cGoldenTests.Reproduce(outPath, tok, "test_all_greedy_200");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void A_half_paired_llama_comes_back_with_the_same_logits()
    {
        var cfg = new ModelConfig { Arch = "llama", VocabSize = 40, NLayer = 2, NHead = 4, NKvHead = 2, NEmbd = 32, BlockSize = 24, MlpHidden = 48, RopeStyle = "half" };
        var lm = LanguageModel.Create(cfg, seed: 4);
        string dir = Directory.CreateTempSubdirectory("quill-l2c-").FullName;
        try
        {
            string path = Path.Combine(dir, "m.bin");
            using (var m = ModelLoader.FromLanguageModel(lm))
            {
                var report = ModelExport.Export(m, path, ModelExport.ParseFormat(null, path), null);
                Assert.Equal("the model has no tokenizer", report.TokenizerNote);
                Assert.False(File.Exists(Path.Combine(dir, "tok40.bin")));
            }
            using var back = ModelLoader.Load(path);
            Assert.Equal(Quill.Kernels.RopeStyle.Interleaved, back.Spec.RopeStyle);
            Assert.Equal(2, back.Spec.KvHeads);
            int[] tokens = [3, 17, 9, 30, 1, 22, 5, 11];
            float[] want = lm.Forward(new Graph(recording: false), tokens, 1, tokens.Length).ToArray();
            var engine = new InferenceEngine(back);
            var got = new float[tokens.Length * 40];
            engine.Forward(engine.CreateCache(), tokens, got, allLogits: true);
            for (int i = 0; i < want.Length; i++) Assert.True(Math.Abs(want[i] - got[i]) <= 1e-4f * (1 + Math.Abs(want[i])), $"logit {i}: {want[i]} vs {got[i]}");
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Models_llama2c_cannot_run_and_quantized_types_are_refused_in_one_line()
    {
        string dir = Directory.CreateTempSubdirectory("quill-l2c-").FullName;
        try
        {
            var gpt2 = LanguageModel.Create(new ModelConfig { Arch = "gpt2", VocabSize = 40, NLayer = 1, NHead = 2, NEmbd = 16, BlockSize = 16 }, seed: 1);
            string src = Path.Combine(dir, "g.gguf");
            using (var m = ModelLoader.FromLanguageModel(gpt2)) GgufExport.Write(m, src, TensorTypePlan.Parse("f32"));
            string outPath = Path.Combine(dir, "g.bin");
            var r = CliProcess.Run("export", "--model", src, "--format", "llama2c", "--out", outPath);
            Assert.Equal(1, r.Exit);
            Assert.Matches(@"^error: .*g\.gguf: llama2\.c has no learned position table \(it runs Llama models with RoPE\); llama2\.c's format cannot express this model \(use --format gguf or hf\)\.\s*$", r.Err);
            Assert.False(File.Exists(outPath));

            var llama = LanguageModel.Create(new ModelConfig { Arch = "llama", VocabSize = 40, NLayer = 1, NHead = 2, NEmbd = 16, BlockSize = 16, MlpHidden = 32 }, seed: 1);
            string l = Path.Combine(dir, "l.gguf");
            using (var m = ModelLoader.FromLanguageModel(llama)) GgufExport.Write(m, l, TensorTypePlan.Parse("f32"));
            r = CliProcess.Run("export", "--model", l, "--out", outPath, "--dtype", "q8_0");
            Assert.Equal(1, r.Exit);
            Assert.Matches(@"^error: --dtype 'q8_0' is not a llama2\.c type; its legacy \.bin holds float32 only \(leave --dtype out or pass f32\)\.\s*$", r.Err);
            Assert.False(File.Exists(outPath));
            r = CliProcess.Run("export", "--model", l, "--out", outPath, "--format", "onnx");
            Assert.Matches(@"^error: --format 'onnx' is unknown; use gguf, hf or llama2c\.\s*$", r.Err);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
