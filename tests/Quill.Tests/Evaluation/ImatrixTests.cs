// quill imatrix and quantize --imatrix: the importance matrix of a tiny llama (grouped-query attention, SwiGLU)
// equals a direct float64 computation of the squared inputs of every layer product over the chunks it runs; files
// round-trip through llama.cpp's GGUF and legacy .dat layouts; the CLI writes one and quantize uses it; an importance
// matrix of another model, wrong sizes and a file that is not one are refused in one line, leaving no output.
using Quill.Evaluation;
using Quill.Formats;
using Quill.Inference;
using Quill.Models;
using Quill.Quantization;
using Quill.Tensors;
using Quill.Tests.Cli;

namespace Quill.Tests.Evaluation;

public sealed class ImatrixTests
{
    private static ModelConfig Config(int width = 32) => new()
    {
        Arch = "llama", VocabSize = 61, NLayer = 2, NHead = 4, NKvHead = 2, NEmbd = width, BlockSize = 40, MlpHidden = 64,
    };

    /// <summary>Sums of squared inputs per GGUF tensor name by a plain float64 llama forward, chunk by chunk.</summary>
    private static Dictionary<string, double[]> Direct(ModelWeights w, int[] tokens, int ctx, int chunks)
    {
        var s = w.Spec;
        int c = s.Dim, d = s.HeadDim, hq = s.Heads, hkv = s.KvHeads, f = s.Hidden;
        var sums = new Dictionary<string, double[]>();
        void Add(string name, double[] x)
        {
            if (!sums.TryGetValue(name, out var a)) sums[name] = a = new double[x.Length];
            for (int j = 0; j < x.Length; j++) a[j] += x[j] * x[j];
        }
        double[] MatVec(WeightMatrix m, double[] x)
        {
            var wf = m.ToFloats();
            var y = new double[m.Rows];
            for (int r = 0; r < m.Rows; r++)
            {
                double acc = 0;
                for (int k = 0; k < m.Cols; k++) acc += wf[r * m.Cols + k] * x[k];
                y[r] = acc;
            }
            return y;
        }
        double[] Rms(double[] x, float[] g)
        {
            double ms = x.Sum(v => v * v) / x.Length;
            double inv = 1 / Math.Sqrt(ms + s.NormEps);
            return [.. x.Select((v, j) => v * inv * g[j])];
        }
        void Rope(double[] v, int heads, int pos)
        {
            for (int h = 0; h < heads; h++)
            {
                for (int i = 0; i < d / 2; i++)
                {
                    double freq = Math.Pow(s.RopeTheta, -2.0 * i / d), a = pos * freq;
                    double x0 = v[h * d + i], x1 = v[h * d + i + d / 2];
                    v[h * d + i] = x0 * Math.Cos(a) - x1 * Math.Sin(a);
                    v[h * d + i + d / 2] = x0 * Math.Sin(a) + x1 * Math.Cos(a);
                }
            }
        }
        var emb = w.TokenEmbedding.ToFloats();
        for (int ch = 0; ch < chunks; ch++)
        {
            var xs = new double[ctx][];
            for (int t = 0; t < ctx; t++) xs[t] = [.. emb.AsSpan(tokens[ch * ctx + t] * c, c).ToArray().Select(v => (double)v)];
            for (int l = 0; l < s.Layers; l++)
            {
                var lw = w.Layers[l];
                string p = $"blk.{l}.";
                var qs = new double[ctx][];
                var ks = new double[ctx][];
                var vs = new double[ctx][];
                for (int t = 0; t < ctx; t++)
                {
                    var h = Rms(xs[t], lw.AttnNorm!);
                    foreach (string n in new[] { "attn_q", "attn_k", "attn_v" }) Add(p + n + ".weight", h);
                    qs[t] = MatVec(lw.Wq!, h);
                    ks[t] = MatVec(lw.Wk!, h);
                    vs[t] = MatVec(lw.Wv!, h);
                    Rope(qs[t], hq, t);
                    Rope(ks[t], hkv, t);
                }
                for (int t = 0; t < ctx; t++)
                {
                    var att = new double[hq * d];
                    for (int h = 0; h < hq; h++)
                    {
                        int kh = h / (hq / hkv);
                        var sc = new double[t + 1];
                        for (int u = 0; u <= t; u++)
                        {
                            double dot = 0;
                            for (int i = 0; i < d; i++) dot += qs[t][h * d + i] * ks[u][kh * d + i];
                            sc[u] = dot / Math.Sqrt(d);
                        }
                        double mx = sc.Max(), z = sc.Sum(v => Math.Exp(v - mx));
                        for (int u = 0; u <= t; u++)
                        {
                            double pr = Math.Exp(sc[u] - mx) / z;
                            for (int i = 0; i < d; i++) att[h * d + i] += pr * vs[u][kh * d + i];
                        }
                    }
                    Add(p + "attn_output.weight", att);
                    var o = MatVec(lw.Wo, att);
                    for (int j = 0; j < c; j++) xs[t][j] += o[j];
                    var m = Rms(xs[t], lw.MlpNorm!);
                    Add(p + "ffn_gate.weight", m);
                    Add(p + "ffn_up.weight", m);
                    var g = MatVec(lw.Gate!, m);
                    var up = MatVec(lw.Up!, m);
                    var act = new double[f];
                    for (int j = 0; j < f; j++) act[j] = g[j] / (1 + Math.Exp(-g[j])) * up[j];
                    Add(p + "ffn_down.weight", act);
                    var dn = MatVec(lw.Down!, act);
                    for (int j = 0; j < c; j++) xs[t][j] += dn[j];
                }
            }
        }
        return sums;
    }

    [Fact]
    public void Imatrix_of_a_tiny_model_equals_a_direct_computation()
    {
        var lm = LanguageModel.Create(Config(), seed: 5);
        using var model = ModelLoader.FromLanguageModel(lm);
        var rng = new Random(2);
        int[] tokens = [.. Enumerable.Range(0, 3 * 16 + 5).Select(_ => rng.Next(61))];
        var result = ImatrixCollector.Collect(model, tokens, 16, 2, "random");
        var m = result.Matrix;
        Assert.Equal(2, result.Chunks);
        Assert.Equal(2, m.ChunkCount);
        Assert.Equal(16, m.ChunkSize);
        Assert.Equal(["random"], m.Datasets);
        Assert.True(double.IsFinite(result.Perplexity) && result.Perplexity > 1, $"perplexity {result.Perplexity}");
        var expected = Direct(model.Weights, tokens, 16, 2);
        Assert.Equal(expected.Keys.Order(StringComparer.Ordinal), m.Entries.Keys);
        Assert.Equal(14, m.Entries.Count);
        foreach (var (name, e) in m.Entries)
        {
            Assert.Equal(32, e.Count); // every token of the two chunks, as llama-imatrix counts
            var want = expected[name];
            Assert.Equal(want.Length, e.Sums.Length);
            for (int j = 0; j < want.Length; j++)
                Assert.True(Math.Abs(e.Sums[j] - want[j]) <= 1e-4 * (1 + want[j]), $"{name}[{j}]: {e.Sums[j]} vs direct {want[j]}");
            var mean = m.Mean(name)!;
            Assert.Equal(e.Sums[3] / 32, mean[3], 6);
        }
    }

    [Theory]
    [InlineData("m.gguf")]
    [InlineData("m.dat")]
    public void Files_round_trip(string file)
    {
        string dir = Directory.CreateTempSubdirectory("quill-imatrix-").FullName;
        try
        {
            var m = new ImportanceMatrix { ChunkCount = 3, ChunkSize = 64 };
            m.Datasets.Add("calib.txt");
            var rng = new Random(4);
            m.Set("blk.0.attn_q.weight", [.. Enumerable.Range(0, 32).Select(_ => (float)(rng.NextDouble() * 100))], 192);
            m.Set("blk.1.ffn_down.weight", [.. Enumerable.Range(0, 48).Select(_ => (float)(rng.NextDouble() * 10))], 192);
            string path = Path.Combine(dir, file);
            ImatrixFile.Write(m, path);
            var back = ImatrixFile.Read(path);
            Assert.Equal(m.Entries.Keys, back.Entries.Keys);
            Assert.Equal(3, back.ChunkCount);
            Assert.Equal(["calib.txt"], back.Datasets);
            foreach (string name in m.Entries.Keys)
            {
                float[] a = m.Mean(name)!, b = back.Mean(name)!;
                for (int j = 0; j < a.Length; j++) Assert.Equal(a[j], b[j], a[j] * 1e-6f);
            }
            if (file.EndsWith(".gguf", StringComparison.Ordinal))
            {
                Assert.Equal(64, back.ChunkSize);
                Assert.Equal(m.Entries["blk.0.attn_q.weight"].Sums, back.Entries["blk.0.attn_q.weight"].Sums);
                Assert.Equal(192, back.Entries["blk.0.attn_q.weight"].Count);
            }
            else
            {
                Assert.Equal(3, back.Entries["blk.0.attn_q.weight"].Count); // ncall = 192 tokens / 64 per chunk
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Cli_writes_an_imatrix_quantize_uses_it_and_bad_input_is_one_line()
    {
        string dir = Directory.CreateTempSubdirectory("quill-imatrix-cli-").FullName;
        try
        {
            var lm = LanguageModel.Create(Config(), seed: 9);
            string model = Path.Combine(dir, "m.gguf");
            using (var im = ModelLoader.FromLanguageModel(lm)) GgufExport.Write(im, model, TensorTypePlan.Parse("f32"));
            var other = LanguageModel.Create(Config(64), seed: 9);
            string otherModel = Path.Combine(dir, "other.gguf");
            using (var im = ModelLoader.FromLanguageModel(other)) GgufExport.Write(im, otherModel, TensorTypePlan.Parse("f32"));
            string ids = Path.Combine(dir, "ids.txt");
            var rng = new Random(1);
            // the model has no tokenizer: write token ids the collector runs through the library instead
            int[] tokens = [.. Enumerable.Range(0, 64).Select(_ => rng.Next(61))];
            using (var im = ModelLoader.Load(model))
                ImatrixFile.Write(ImatrixCollector.Collect(im, tokens, 32, 0, "ids").Matrix, Path.Combine(dir, "imatrix.gguf"));
            string imatrix = Path.Combine(dir, "imatrix.gguf");
            string outQ = Path.Combine(dir, "q.gguf");
            var r = CliProcess.Run("quantize", "--model", model, "--type", "q4_0", "--imatrix", imatrix, "--out", outQ);
            Assert.True(r.Exit == 0, r.Err);
            Assert.Contains("importance matrix imatrix.gguf: 14 matrices quantized with its weights", r.Out);
            Assert.True(File.Exists(outQ));

            // an importance matrix of another (wider) model: one line, no file
            string otherImatrix = Path.Combine(dir, "other.gguf.imatrix.gguf");
            using (var im = ModelLoader.Load(otherModel))
                ImatrixFile.Write(ImatrixCollector.Collect(im, tokens, 32, 0, "ids").Matrix, otherImatrix);
            string bad = Path.Combine(dir, "bad.gguf");
            r = CliProcess.Run("quantize", "--model", model, "--type", "q4_0", "--imatrix", otherImatrix, "--out", bad);
            Assert.Equal(1, r.Exit);
            Assert.Matches(@"^error: .*other\.gguf\.imatrix\.gguf: blk\.0\.attn_q\.weight has 64 values but the model's matrix has 32 input columns; the importance matrix was made for another model\.\s*$", r.Err);
            Assert.False(File.Exists(bad));

            // entries naming none of the model's matrices
            var foreign = new ImportanceMatrix();
            foreign.Set("blk.0.ssm_in.weight", new float[32], 1);
            string foreignPath = Path.Combine(dir, "foreign.dat");
            ImatrixFile.Write(foreign, foreignPath);
            r = CliProcess.Run("quantize", "--model", model, "--type", "q4_0", "--imatrix", foreignPath, "--out", bad);
            Assert.Equal(1, r.Exit);
            Assert.Matches(@"^error: .*foreign\.dat: none of its 1 entries \(e\.g\. blk\.0\.ssm_in\.weight\) names a matrix of .*; the importance matrix was made for another model\.\s*$", r.Err);

            // a llama2.c checkpoint (neither GGUF nor a legacy .dat)
            string l2c = Path.Combine(dir, "m.bin");
            using (var im = ModelLoader.Load(model)) Llama2cExport.Write(im, l2c);
            r = CliProcess.Run("quantize", "--model", model, "--type", "q4_0", "--imatrix", l2c, "--out", bad);
            Assert.Equal(1, r.Exit);
            Assert.Matches(@"^error: .*m\.bin: entry 0 has no readable tensor name; neither a GGUF nor a legacy \.dat importance matrix\.\s*$", r.Err);

            // a model file given as the importance matrix, and a truncated legacy file
            r = CliProcess.Run("quantize", "--model", model, "--type", "q4_0", "--imatrix", model, "--out", bad);
            Assert.Equal(1, r.Exit);
            Assert.Matches(@"^error: .*m\.gguf: no \*\.in_sum2 tensors; not an importance matrix\.\s*$", r.Err);
            string truncated = Path.Combine(dir, "cut.dat");
            File.WriteAllBytes(truncated, File.ReadAllBytes(foreignPath)[..40]);
            r = CliProcess.Run("quantize", "--model", model, "--type", "q4_0", "--imatrix", truncated, "--out", bad);
            Assert.Equal(1, r.Exit);
            Assert.Matches(@"^error: .*cut\.dat: blk\.0\.ssm_in\.weight claims 32 values, which do not fit the file\.\s*$", r.Err);
            Assert.False(File.Exists(bad));

            // the imatrix verb needs a tokenizer to read text: one line
            string text = Path.Combine(dir, "t.txt");
            File.WriteAllText(text, "once upon a time");
            r = CliProcess.Run("imatrix", "--model", model, "--data", text, "--out", Path.Combine(dir, "x.gguf"));
            Assert.Equal(1, r.Exit);
            Assert.Matches(@"^error: .*carries no tokenizer, and the 'imatrix' task needs one.*\s*$", r.Err);
            Assert.False(File.Exists(Path.Combine(dir, "x.gguf")));
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }
}
