// Plain reference twin of Embedding: obvious loops, one thread. Does not handle: speed.
// Glossary: N tokens, V vocabulary size, C embedding width.
namespace Quill.Kernels;

/// <summary>Reference embedding lookup and gradient (same signatures as <see cref="Embedding"/>).</summary>
public static class EmbeddingReference
{
    public static void Forward(
        ReadOnlySpan<int> tokens,   // [N]
        ReadOnlySpan<float> table,  // [V, C]
        Span<float> y,              // [N, C]
        int c)
    {
        Embedding.CheckShapes(tokens, table.Length, c);
        for (int i = 0; i < tokens.Length; i++)
            for (int j = 0; j < c; j++) y[i * c + j] = table[tokens[i] * c + j];
    }

    public static void Backward(
        ReadOnlySpan<int> tokens,  // [N]
        ReadOnlySpan<float> dy,    // [N, C]
        Span<float> dtable,        // [V, C] +=
        int c)
    {
        Embedding.CheckShapes(tokens, dtable.Length, c);
        for (int i = 0; i < tokens.Length; i++)
            for (int j = 0; j < c; j++) dtable[tokens[i] * c + j] += dy[i * c + j];
    }
}
