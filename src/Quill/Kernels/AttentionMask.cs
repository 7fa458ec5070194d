// Which keys a query of the training attention kernels may see, beyond causality, and the score soft-cap: one
// general facility for sliding windows (Mistral, Gemma's local layers) and packed rows (several documents in one
// row, none attending across a boundary). Both restrict query i of row b to keys j in [Lowest(b, i), i]:
//   window W > 0:   j > i - W                (i - j < W: the query and the W - 1 keys before it; llama.cpp's and
//                                              Hugging Face's convention)
//   documents:      j >= DocStart[b, i]      (the position in its row where token i's document begins)
// Lowest never decreases along a row (checked when documents are given), which lets the kernels skip whole key
// blocks below it. Softcap c > 0 replaces every scaled score s by c tanh(s / c) before the softmax (Gemma 2).
// A mask with no window, no documents and no cap is the plain causal kernel's path, unchanged.
// Glossary: B batch, T sequence length, i query position, j key position, W window.
namespace Quill.Kernels;

/// <summary>Key visibility (sliding window, document boundaries within a row) and score soft-capping for attention.</summary>
public sealed class AttentionMask
{
    private AttentionMask(int window, int[]? docStarts, float softcap)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(window);
        if (!(softcap >= 0) || float.IsInfinity(softcap)) throw new ArgumentOutOfRangeException(nameof(softcap), softcap, "The soft-cap must be finite and not negative.");
        Window = window;
        DocStarts = docStarts;
        Softcap = softcap;
    }

    /// <summary>Keys per query including itself (0: unlimited).</summary>
    public int Window { get; }

    /// <summary>[B, T]: where each token's document starts in its row, or null for one document per row.</summary>
    public int[]? DocStarts { get; }

    /// <summary>c in c tanh(s / c) applied to scaled scores (0: none).</summary>
    public float Softcap { get; }

    /// <summary>True when the mask changes nothing: the kernels take their plain causal path.</summary>
    public bool IsPlain => Window == 0 && DocStarts == null && Softcap == 0;

    /// <summary>A sliding window and / or a soft-cap (0 for none).</summary>
    public static AttentionMask Create(int window = 0, float softcap = 0) => new(window, null, softcap);

    /// <summary>
    /// Packed rows: docStarts [B, T] gives for each token the position where its document starts (0 for the first);
    /// a document starts either where the previous token's did or at the token itself.
    /// </summary>
    public static AttentionMask Documents(int[] docStarts, int B, int T, int window = 0, float softcap = 0)
    {
        ArgumentNullException.ThrowIfNull(docStarts);
        if (docStarts.Length != B * T) throw new ArgumentException($"docStarts holds {docStarts.Length} values, not B * T = {B * T}.", nameof(docStarts));
        for (int b = 0; b < B; b++)
        {
            for (int i = 0; i < T; i++)
            {
                int s = docStarts[b * T + i];
                bool ok = i == 0 ? s == 0 : s == i || s == docStarts[b * T + i - 1];
                if (!ok) throw new ArgumentException($"docStarts[{b}, {i}] = {s}: a document starts at the previous token's start or at the token itself.", nameof(docStarts));
            }
        }
        return new(window, docStarts, softcap);
    }

    /// <summary>Document starts [B, T] from segment ids [B, T] (a new document wherever the id changes along a row).</summary>
    public static int[] StartsFromSegments(ReadOnlySpan<int> segmentIds, int B, int T)
    {
        if (segmentIds.Length != B * T) throw new ArgumentException($"segment ids hold {segmentIds.Length} values, not B * T = {B * T}.", nameof(segmentIds));
        var starts = new int[B * T];
        for (int b = 0; b < B; b++)
        {
            for (int i = 0; i < T; i++)
                starts[b * T + i] = i > 0 && segmentIds[b * T + i] == segmentIds[b * T + i - 1] ? starts[b * T + i - 1] : i;
        }
        return starts;
    }

    /// <summary>The first key query i of row b sees (T: the row length, to index DocStarts).</summary>
    public int Lowest(int b, int i, int T)
    {
        int lo = Window > 0 ? Math.Max(0, i - Window + 1) : 0;
        return DocStarts == null ? lo : Math.Max(lo, DocStarts[b * T + i]);
    }
}
