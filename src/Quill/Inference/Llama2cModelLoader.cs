// Builds an InferenceModel from a llama2.c float32 checkpoint (legacy or export v1, read by
// Formats.Llama2c.Llama2cCheckpoint), its weights viewed in place in the mapping. llama2.c keeps Meta's layout, so
// RoPE pairs adjacent dims (interleaved); eps 1e-5, theta 10000. The tokenizer is tokenizer.bin or tok{V}.bin
// beside the model when present (else the caller passes one).
// Does not handle: int8 (version 2) exports.
using Quill.Formats.Gguf;
using Quill.Formats.Llama2c;
using Quill.Quantization;
using Quill.Kernels;
using Quill.Models;
using Quill.Tensors;
using Quill.Tokenization;

namespace Quill.Inference;

/// <summary>Loads llama2.c .bin checkpoints for inference.</summary>
public static class Llama2cModelLoader
{
    public static unsafe InferenceModel Load(string path)
    {
        var ck = Llama2cCheckpoint.Open(path);
        try
        {
            var c = ck.Config;
            var spec = new ModelSpec
            {
                Arch = "llama2.c",
                Dim = c.Dim,
                Layers = c.Layers,
                Heads = c.Heads,
                KvHeads = c.KvHeads,
                HeadDim = c.HeadSize,
                Hidden = c.HiddenDim,
                VocabSize = c.VocabSize,
                MaxContext = c.SeqLen,
                NormEps = 1e-5f,
                RopeTheta = 10000,
                RopeStyle = RopeStyle.Interleaved,
            };
            WeightMatrix M(string name, ReadOnlySpan<float> w, int rows, int cols)
            {
                fixed (float* p = w) return new WeightMatrix(name, GgmlType.F32, (nint)p, rows, cols);
            }
            var layers = new LayerWeights[c.Layers];
            for (int l = 0; l < c.Layers; l++)
            {
                layers[l] = new LayerWeights
                {
                    AttnNorm = ck.RmsAtt(l).ToArray(),
                    Wq = M($"wq[{l}]", ck.Wq(l), c.Dim, c.Dim),
                    Wk = M($"wk[{l}]", ck.Wk(l), c.KvDim, c.Dim),
                    Wv = M($"wv[{l}]", ck.Wv(l), c.KvDim, c.Dim),
                    Wo = M($"wo[{l}]", ck.Wo(l), c.Dim, c.Dim),
                    MlpNorm = ck.RmsFfn(l).ToArray(),
                    Gate = M($"w1[{l}]", ck.W1(l), c.HiddenDim, c.Dim),
                    Up = M($"w3[{l}]", ck.W3(l), c.HiddenDim, c.Dim),
                    Down = M($"w2[{l}]", ck.W2(l), c.Dim, c.HiddenDim),
                };
            }
            var embed = M("token_embedding", ck.TokenEmbedding, c.VocabSize, c.Dim);
            var head = c.SharedClassifier ? embed : M("classifier", ck.Classifier, c.VocabSize, c.Dim);
            var model = new InferenceModel(new ModelWeights(spec with { TiedEmbeddings = c.SharedClassifier }, embed, null, layers, ck.RmsFinal.ToArray(), null, head, [ck], path))
            {
                AddBos = true,
            };
            string dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
            foreach (string name in new[] { $"tok{c.VocabSize}.bin", "tokenizer.bin" })
            {
                string tp = Path.Combine(dir, name);
                if (File.Exists(tp))
                {
                    var tok = TokenizerLoader.Load(tp);
                    if (tok.VocabSize == c.VocabSize)
                    {
                        model.Tokenizer = tok;
                        break;
                    }
                }
            }
            return model;
        }
        catch
        {
            ck.Dispose();
            throw;
        }
    }
}
