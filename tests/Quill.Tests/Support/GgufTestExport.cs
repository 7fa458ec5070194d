// Test helper: writes loaded Llama-family weights as a GGUF "llama" model (interleaved RoPE, as GGUF's llama layout
// implies), matrices in one ggml type (F32 where rows are not whole blocks), norms F32, no tokenizer metadata.
// Tensor names come from the GGUF name table (TensorNames.Gguf), the same one the loader reads.
// With vocabularyFrom, the tokenizer.* metadata of another GGUF file is copied in (the model's vocabulary must be
// that file's), so llama.cpp and Quill tokenize text for it.
// Not handled: GPT-2 or Qwen2-style weights (biases), a tokenizer of its own: this is not Quill's exporter.
using Quill.Formats.Gguf;
using Quill.Models;
using Quill.Quantization;
using Quill.Tensors;

namespace Quill.Tests.Support;

internal static class GgufTestExport
{
    public static void WriteLlama(ModelWeights m, GgmlType type, string path, string? vocabularyFrom = null)
    {
        var s = m.Spec;
        if (s.RopeStyle != Quill.Kernels.RopeStyle.Interleaved || s.QkvBias || s.Positions != PositionKind.Rope)
            throw new ArgumentException("only interleaved-RoPE Llama weights without biases", nameof(m));
        var names = TensorNames.Gguf;
        var w = new GgufWriter()
            .SetString("general.architecture", "llama")
            .SetUInt32("llama.embedding_length", (uint)s.Dim)
            .SetUInt32("llama.block_count", (uint)s.Layers)
            .SetUInt32("llama.feed_forward_length", (uint)s.Hidden)
            .SetUInt32("llama.attention.head_count", (uint)s.Heads)
            .SetUInt32("llama.attention.head_count_kv", (uint)s.KvHeads)
            .SetUInt32("llama.context_length", (uint)s.MaxContext)
            .SetFloat32("llama.attention.layer_norm_rms_epsilon", s.NormEps)
            .SetFloat32("llama.rope.freq_base", (float)s.RopeTheta);
        if (vocabularyFrom != null)
        {
            using var source = GgufFile.Open(vocabularyFrom);
            foreach (string key in source.MetadataKeys)
                if (key.StartsWith("tokenizer.", StringComparison.Ordinal)) w.Set(key, source.Get(key));
        }
        void Matrix(string name, WeightMatrix x)
        {
            var t = x.Cols % GgmlTypeInfo.BlockSize(type) == 0 ? type : GgmlType.F32;
            var bytes = new byte[GgmlTypeInfo.RowBytes(t, x.Cols) * x.Rows];
            GgmlQuant.Quantize(t, x.ToFloats(), bytes);
            w.AddTensor(name, t, [x.Cols, x.Rows], bytes);
        }
        void Vector(string name, float[] v) => w.AddTensor(name, [v.Length], v);
        Matrix(names.Name(WeightSlot.TokenEmbedding)!, m.TokenEmbedding);
        if (!m.Tied) Matrix(names.Name(WeightSlot.Head)!, m.Classifier);
        Vector(names.Name(WeightSlot.FinalNorm)!, m.FinalNorm);
        for (int i = 0; i < s.Layers; i++)
        {
            var l = m.Layers[i];
            Vector(names.Name(WeightSlot.AttnNorm, i)!, l.AttnNorm);
            Vector(names.Name(WeightSlot.MlpNorm, i)!, l.MlpNorm);
            Matrix(names.Name(WeightSlot.Q, i)!, l.Wq!);
            Matrix(names.Name(WeightSlot.K, i)!, l.Wk!);
            Matrix(names.Name(WeightSlot.V, i)!, l.Wv!);
            Matrix(names.Name(WeightSlot.O, i)!, l.Wo);
            Matrix(names.Name(WeightSlot.Gate, i)!, l.Gate!);
            Matrix(names.Name(WeightSlot.Up, i)!, l.Up);
            Matrix(names.Name(WeightSlot.Down, i)!, l.Down);
        }
        w.Write(path);
    }
}
