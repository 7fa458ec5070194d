// Writes a model as a llama2.c legacy float32 checkpoint (run.c's format; the writing twin of
// Formats.Llama2c.Llama2cCheckpoint): a 7 x int32 header (dim, hidden_dim, n_layers, n_heads, n_kv_heads,
// vocab_size, negative when the classifier is separate, seq_len), then token_embedding [V, C], rms_att [L, C],
// wq [L, C, C], wk [L, KV, C], wv [L, KV, C], wo [L, C, C], rms_ffn [L, C], w1 [L, H, C], w2 [L, C, H],
// w3 [L, H, C], rms_final [C], freq_cis_real and freq_cis_imag [seq_len, head_size / 2] (cos and sin of RoPE's
// angles, which run.c ignores), then the classifier [V, C] when not shared. Weights of any type are written as
// float32, row by row, streamed through AtomicFile. run.c rotates adjacent pairs, so the q and k rows of a model
// that pairs dims by halves are permuted per head as GgufExport permutes them.
// Only what run.c computes can be written: a Llama (RMSNorm without bias, SwiGLU, full-width RoPE with theta 10000
// and no scaling, no biases, no q/k norms, head_dim = dim / n_heads, norm eps 1e-5, which run.c fixes); anything
// else is refused in one line naming what llama2.c lacks.
// The tokenizer goes beside the checkpoint as tok{V}.bin (the name run.c's -z option and Quill's loader look for)
// when it is a SentencePiece BPE vocabulary with a space prefix (llama2.c's tokenizer.bin format: int32
// max_token_length, per token float32 score, int32 length, bytes; U+2581 written as ' ', BOS / EOS as "\n<s>\n" /
// "\n</s>\n"); other tokenizers are left out with a note.
// Does not handle: llama2.c's export versions 1 and 2 (the header-256 float and int8 layouts).
using System.Text;
using Quill.Kernels;
using Quill.Models;
using Quill.Quantization;
using Quill.Tensors;
using Quill.Tokenization;

namespace Quill.Inference;

/// <summary>Writes llama2.c legacy .bin checkpoints (and tokenizer.bin) from any model Quill loads.</summary>
public static class Llama2cExport
{
    /// <summary>Why llama2.c's run.c cannot run <paramref name="spec"/>, or null when it can.</summary>
    public static string? Unsupported(ModelSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        if (spec.Positions != PositionKind.Rope) return "llama2.c has no learned position table (it runs Llama models with RoPE)";
        if (spec.Norm != NormKind.RmsNorm || spec.NormBias) return "llama2.c normalizes with RMSNorm without a bias";
        if (spec.Mlp != MlpKind.SwiGlu) return "llama2.c's MLP is SwiGLU";
        if (spec.IsMoe) return "llama2.c has one MLP per layer, not a mixture of experts";
        if (spec.QkvBias || spec.OutBias || spec.MlpBias) return "llama2.c has no biases";
        if (spec.QkNorm) return "llama2.c has no q/k norms";
        if (!spec.PreNorms || spec.PostNorms) return "llama2.c normalizes the inputs of attention and the MLP, and nothing else";
        if (spec.HeadDim * spec.Heads != spec.Dim) return $"llama2.c's head size is dim / n_heads ({spec.Dim} / {spec.Heads}), the model's is {spec.HeadDim}";
        if (spec.EffectiveRotaryDim != spec.HeadDim) return "llama2.c rotates whole heads (no partial rotary)";
        if (spec.RopeTheta != 10000.0) return $"llama2.c fixes RoPE theta at 10000 (the model's is {spec.RopeTheta})";
        if (spec.RopeScaling != null || spec.RopeLinearFactor != 1.0 || spec.RopeFreqFactors != null) return "llama2.c has no RoPE scaling";
        if (spec.NormEps != 1e-5f) return $"llama2.c fixes the norm epsilon at 1e-5 (the model's is {spec.NormEps})";
        if (spec.SlidingWindow > 0 && spec.SlidingWindow < spec.MaxContext) return "llama2.c has no sliding-window attention";
        return null;
    }

    /// <summary>
    /// Writes <paramref name="model"/> to <paramref name="path"/> (atomically) and, for a SentencePiece BPE
    /// vocabulary, tok{V}.bin beside it. Returns what was written; TokenizerNote says why no tokenizer was.
    /// </summary>
    public static ExportReport Write(InferenceModel model, string path)
    {
        ArgumentNullException.ThrowIfNull(model);
        model.RefusingAdapter("export it");
        ArgumentException.ThrowIfNullOrEmpty(path);
        var s = model.Spec;
        if (Unsupported(s) is { } why)
            throw new QuillException($"{model.Source}: {why}; llama2.c's format cannot express this model (use --format gguf or hf).");
        var w = model.Weights;
        bool permute = s.RopeStyle == RopeStyle.Half;
        int[]? qOrder = permute ? GgufExport.RowOrder(s, s.Heads) : null;
        int[]? kOrder = permute ? GgufExport.RowOrder(s, s.KvHeads) : null;
        int tensors = 0;
        AtomicFile.Write(path, stream =>
        {
            using var o = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            foreach (int v in new[] { s.Dim, s.Hidden, s.Layers, s.Heads, s.KvHeads, w.Tied ? s.VocabSize : -s.VocabSize, s.MaxContext }) o.Write(v);
            void Matrix(WeightMatrix m, int[]? order = null)
            {
                var row = new float[m.Cols];
                for (int r = 0; r < m.Rows; r++)
                {
                    m.ReadRow(order?[r] ?? r, row);
                    foreach (float x in row) o.Write(x);
                }
                tensors++;
            }
            void Vector(float[] v)
            {
                foreach (float x in v) o.Write(x);
                tensors++;
            }
            Matrix(w.TokenEmbedding);
            foreach (var l in w.Layers) Vector(l.AttnNorm!);
            foreach (var l in w.Layers) Matrix(Part(l, s, 0), qOrder);
            foreach (var l in w.Layers) Matrix(Part(l, s, 1), kOrder);
            foreach (var l in w.Layers) Matrix(Part(l, s, 2));
            foreach (var l in w.Layers) Matrix(l.Wo);
            foreach (var l in w.Layers) Vector(l.MlpNorm!);
            foreach (var l in w.Layers) Matrix(l.Gate!);
            foreach (var l in w.Layers) Matrix(l.Down!);
            foreach (var l in w.Layers) Matrix(l.Up!);
            Vector(w.FinalNorm);
            int half = s.HeadDim / 2;
            for (int part = 0; part < 2; part++)
            {
                for (int t = 0; t < s.MaxContext; t++)
                {
                    for (int i = 0; i < half; i++)
                    {
                        // in float32 as llama2.c's export computes them (precompute_freqs_cis)
                        float angle = t * (1f / MathF.Pow((float)s.RopeTheta, 2f * i / s.HeadDim));
                        o.Write(part == 0 ? MathF.Cos(angle) : MathF.Sin(angle));
                    }
                }
            }
            if (!w.Tied) Matrix(w.Classifier);
            o.Flush();
        });
        string? note = WriteTokenizer(model, path);
        return new ExportReport(Path.GetFullPath(path), "llama2.c", new FileInfo(path).Length, tensors,
            new Dictionary<GgmlType, int> { [GgmlType.F32] = tensors }, note);
    }

    /// <summary>The path of the tokenizer written beside <paramref name="modelPath"/> for a vocabulary of <paramref name="vocab"/>.</summary>
    public static string TokenizerPath(string modelPath, int vocab) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(modelPath))!, $"tok{vocab}.bin");

    private static WeightMatrix Part(LayerWeights l, ModelSpec s, int which)
    {
        if (l.Wq != null) return which switch { 0 => l.Wq, 1 => l.Wk!, _ => l.Wv! };
        var f = l.Wqkv!;
        return which switch
        {
            0 => f.SliceRows(f.Name + "[q]", 0, s.QDim),
            1 => f.SliceRows(f.Name + "[k]", s.QDim, s.KvDim),
            _ => f.SliceRows(f.Name + "[v]", s.QDim + s.KvDim, s.KvDim),
        };
    }

    private static string? WriteTokenizer(InferenceModel model, string path)
    {
        if (model.Tokenizer is not SentencePieceTokenizer sp || sp.Kind != SentencePieceModelKind.Bpe)
            return model.Tokenizer == null ? "the model has no tokenizer" : $"a {model.Tokenizer.Family} tokenizer has no llama2.c tokenizer.bin form (SentencePiece BPE vocabularies do)";
        var d = VocabularyExport.Describe(sp, model.Spec.VocabSize, model.Source, out string why);
        if (d == null) return why;
        if (!d.AddSpacePrefix) return "llama2.c's tokenizer always adds a space prefix; this SentencePiece vocabulary does not";
        var pieces = new byte[d.Tokens.Count][];
        for (int i = 0; i < pieces.Length; i++)
        {
            string text = Encoding.UTF8.GetString(d.Tokens[i]);
            var type = d.TokenTypes?[i] ?? PieceType.Normal;
            if (i == d.BosId || i == d.EosId) text = "\n" + text + "\n";
            else if (type == PieceType.Normal) text = text.Replace(VocabularyExport.SpaceMark, " ", StringComparison.Ordinal);
            pieces[i] = Encoding.UTF8.GetBytes(text);
        }
        AtomicFile.Write(TokenizerPath(path, model.Spec.VocabSize), stream =>
        {
            using var o = new BinaryWriter(stream, Encoding.UTF8, leaveOpen: true);
            o.Write(pieces.Max(p => p.Length));
            for (int i = 0; i < pieces.Length; i++)
            {
                o.Write(d.Scores?[i] ?? 0f);
                o.Write(pieces[i].Length);
                o.Write(pieces[i]);
            }
            o.Flush();
        });
        return null;
    }
}
