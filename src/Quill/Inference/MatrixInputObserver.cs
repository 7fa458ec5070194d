// What InferenceEngine.InputObserver receives: the input rows of one of a layer's matrix products, named by which
// product they feed (Evaluation.ImatrixCollector maps that to GGUF tensor names). The rows are the engine's scratch,
// valid only during the call.
namespace Quill.Inference;

/// <summary>Which products of a layer an observed input feeds.</summary>
public enum MatrixInput
{
    /// <summary>The normed residual into q, k and v (or the fused q|k|v).</summary>
    Attention,

    /// <summary>The attention output into the output projection.</summary>
    AttentionOutput,

    /// <summary>The normed residual into the MLP's up (and gate) projection.</summary>
    Mlp,

    /// <summary>The MLP activation into the down projection.</summary>
    MlpDown,
}

/// <summary>Receives <paramref name="count"/> input rows of <paramref name="width"/> values of one product of layer <paramref name="layer"/>.</summary>
public delegate void MatrixInputObserver(int layer, MatrixInput input, ReadOnlySpan<float> rows, int count, int width);
