// The hyperparameters stored in a llama2.c checkpoint header (7 int32), with the derived sizes a Llama model needs.
namespace Quill.Formats.Llama2c;

/// <summary>A llama2.c model's hyperparameters.</summary>
/// <param name="Dim">Model width (C).</param>
/// <param name="HiddenDim">Feed-forward width.</param>
/// <param name="Layers">Transformer blocks.</param>
/// <param name="Heads">Query heads.</param>
/// <param name="KvHeads">Key/value heads (grouped-query attention when fewer than Heads).</param>
/// <param name="VocabSize">Vocabulary size (always positive here; the header's sign is <see cref="SharedClassifier"/>).</param>
/// <param name="SeqLen">Maximum sequence length.</param>
/// <param name="SharedClassifier">True when the output classifier reuses the token embedding.</param>
public sealed record Llama2cConfig(int Dim, int HiddenDim, int Layers, int Heads, int KvHeads, int VocabSize, int SeqLen, bool SharedClassifier)
{
    /// <summary>Width of one attention head.</summary>
    public int HeadSize => Dim / Heads;

    /// <summary>Width of the key and value projections (KvHeads * HeadSize).</summary>
    public int KvDim => KvHeads * HeadSize;
}
