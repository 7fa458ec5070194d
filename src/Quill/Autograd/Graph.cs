// The reverse-mode tape. Ops run their forward kernel at once and, when the graph records, push a node that knows
// how to run their backward kernel. Backward() walks the nodes newest first; every node adds its input gradients
// (+=), so a tensor used twice (a residual stream, tied embeddings) gets the sum, and parameter gradients keep
// accumulating over several Backward() calls until the optimizer zeroes them (gradient accumulation). A node recorded
// with its output frees that output's gradient right after its own backward (nothing reads it later), so the pass
// holds a few layers' worth of activation gradients at a time, not all of them.
// Inference mode (recording: false) keeps no nodes and allocates no gradients.
// Marks: with OnBackwardMark set during the forward, a model's Mark(stage) calls record a node whose backward calls
// OnBackwardMark(stage); a model marks the start of each layer, so the mark runs once the backward has finished every
// gradient of that layer and the ones after it (data-parallel training starts summing those gradients then).
// Not handled: higher-order gradients, ops whose inputs are modified after being recorded.
using System.Diagnostics;
using Quill.Tensors;

namespace Quill.Autograd;

/// <summary>One recorded op: runs its own backward kernels.</summary>
public abstract class Node
{
    /// <summary>Reads the gradient of the op's output and adds to the gradients of its inputs.</summary>
    public abstract void Backward(Graph graph);
}

/// <summary>The tape of one forward pass, and the arena that holds its activations.</summary>
public sealed class Graph
{
    private readonly List<Node> nodes = [];
    private readonly List<Tensor?> outputs = [];                            // per node: the output it produced, or null
    private readonly Dictionary<float[], int> gradUsers = new(ReferenceEqualityComparer.Instance); // arena gradient buffer -> tensors whose Grad it is
    private readonly TensorArena arena = new();

    /// <summary>Creates a graph; with recording false it is an inference context that records nothing.</summary>
    public Graph(bool recording = true) => Recording = recording;

    /// <summary>True when ops record themselves for backward.</summary>
    public bool Recording { get; set; }

    /// <summary>Number of recorded ops (zero in inference mode).</summary>
    public int NodeCount => nodes.Count;

    /// <summary>Bytes of activation storage the graph holds.</summary>
    public long ArenaBytes => arena.BytesHeld;

    /// <summary>A new activation tensor from the arena (contents undefined unless zero).</summary>
    public Tensor NewTensor(int[] shape, bool zero = false) => arena.Rent(shape, zero);

    /// <summary>
    /// Hands the storage of an activation back to the arena before the step ends, for a value no recorded backward
    /// reads (a projection output that only feeds an add, the input of a frozen projection with no adapter): later
    /// tensors of the same size reuse it. The tensor keeps its shape and gradient, but its values must not be read
    /// again; call it once per tensor, and only for tensors this graph's ops made.
    /// </summary>
    public void Discard(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        if (TensorArena.IsWhole(t)) arena.Release(t.Storage);
    }

    /// <summary>True when an op with these inputs must record itself.</summary>
    public bool NeedsGrad(Tensor a) => Recording && a.RequiresGrad;

    public bool NeedsGrad(Tensor a, Tensor b) => Recording && (a.RequiresGrad || b.RequiresGrad);

    /// <summary>
    /// When set, time is accumulated per op: "forward NAME" (the time since the previous op finished, which is the op's
    /// forward when ops follow each other) and "backward NAME". Milliseconds. For `quill bench train --profile`.
    /// </summary>
    public Dictionary<string, double>? Profile { get; set; }

    private long lastMark = Stopwatch.GetTimestamp();

    /// <summary>Called during Backward() when it reaches a Mark(stage) recorded while this was set; null: Mark records nothing.</summary>
    public Action<int>? OnBackwardMark { get; set; }

    /// <summary>Records a mark (when recording and <see cref="OnBackwardMark"/> is set): see the file header.</summary>
    public void Mark(int stage)
    {
        if (!Recording || OnBackwardMark == null) return;
        nodes.Add(new MarkNode(stage));
        outputs.Add(null);
    }

    private sealed class MarkNode(int stage) : Node
    {
        public override void Backward(Graph graph) => graph.OnBackwardMark?.Invoke(stage);
    }

    /// <summary>Records a node (ops call this only when Recording).</summary>
    public void Record(Node node) => Record(node, null);

    /// <summary>
    /// Records a node that produced <paramref name="output"/> (a new tensor, not one changed in place): every op
    /// that reads the output was recorded later, so once this node's backward has run, the output's gradient is read
    /// by no one, and its storage goes back to the arena for the gradients of earlier layers.
    /// </summary>
    public void Record(Node node, Tensor? output)
    {
        ArgumentNullException.ThrowIfNull(node);
        nodes.Add(node);
        outputs.Add(output);
        if (Profile != null) Charge("forward " + OpName(node), ref lastMark);
    }

    private void Charge(string key, ref long mark)
    {
        long now = Stopwatch.GetTimestamp();
        Profile![key] = Profile.GetValueOrDefault(key) + Stopwatch.GetElapsedTime(mark, now).TotalMilliseconds;
        mark = now;
    }

    private static string OpName(Node node) => node.GetType().DeclaringType?.Name ?? node.GetType().Name;

    /// <summary>
    /// The gradient buffer of t to add into, allocated zeroed from the arena on first use (parameters bring their
    /// own); one that t shares with another tensor's gradient is copied apart first (see <see cref="Exclusive"/>).
    /// </summary>
    public Tensor GradOf(Tensor t)
    {
        ArgumentNullException.ThrowIfNull(t);
        return t.Grad == null ? t.Grad = Track(arena.Rent(t.Shape, zero: true)) : Exclusive(t);
    }

    /// <summary>
    /// t's gradient, made t's alone before someone adds into it. AddOp lets both of its inputs take over its output's
    /// gradient (the two get the same values), which saves copying it for the second. That sharing is safe while
    /// nobody adds into either: in a residual block the branch's gradient has been read and released before the
    /// layer below adds into the stream's. Where a write comes first, it gets a copy here, so the other holder still
    /// reads the shared values.
    /// </summary>
    private Tensor Exclusive(Tensor t)
    {
        var grad = t.Grad!;
        if (grad.IsForeign || gradUsers.GetValueOrDefault(grad.Storage) <= 1) return grad;
        var own = Track(arena.Rent(t.Shape, zero: false));
        grad.Span.CopyTo(own.Span);
        gradUsers[grad.Storage]--;
        return t.Grad = own;
    }

    private Tensor Track(Tensor grad)
    {
        gradUsers[grad.Storage] = gradUsers.GetValueOrDefault(grad.Storage) + 1;
        return grad;
    }

    /// <summary>After the backward of the node that produced y: y's gradient is dead; its buffer is freed when no other tensor's Grad is it.</summary>
    private void ReleaseGrad(Tensor y)
    {
        if (y.Grad is not { IsForeign: false } grad || !gradUsers.TryGetValue(grad.Storage, out int users)) return;
        y.Grad = null;
        if (users > 1)
        {
            gradUsers[grad.Storage] = users - 1;
            return;
        }
        gradUsers.Remove(grad.Storage);
        arena.Release(grad.Storage);
    }

    /// <summary>
    /// The gradient buffer of t for an op that writes it whole: the existing gradient (fresh = false: add to it), or
    /// new storage with undefined contents (fresh = true: overwrite it), which saves zeroing and reading it.
    /// </summary>
    public Tensor GradForWrite(Tensor t, out bool fresh)
    {
        ArgumentNullException.ThrowIfNull(t);
        fresh = t.Grad == null;
        return fresh ? t.Grad = Track(arena.Rent(t.Shape, zero: false)) : Exclusive(t);
    }

    /// <summary>
    /// Adds dy to the gradient of input. When the caller knows dy is complete and read by no one afterwards (the
    /// gradient of an op's output, inside that op's backward), an input without a gradient yet takes over dy's
    /// storage instead of a zeroed copy (canAlias).
    /// </summary>
    public void AccumulateGrad(Tensor input, Tensor dy, bool canAlias)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentNullException.ThrowIfNull(dy);
        if (input.Grad == null && canAlias)
        {
            input.Grad = dy;
            if (!dy.IsForeign && gradUsers.TryGetValue(dy.Storage, out int users)) gradUsers[dy.Storage] = users + 1;
            return;
        }
        var dx = GradForWrite(input, out bool fresh);
        if (fresh) dy.Span.CopyTo(dx.Span);
        else Kernels.Elementwise.AddInPlace(dx.Span, dy.Span);
    }

    /// <summary>Runs backward from a scalar loss: d(loss)/d(loss) = seed (1 by default; 1/k when accumulating k micro-batches).</summary>
    public void Backward(Tensor loss, float seed = 1f)
    {
        ArgumentNullException.ThrowIfNull(loss);
        if (!Recording) throw new InvalidOperationException("Backward() on a graph that did not record (inference mode).");
        if (loss.Length != 1) throw new InvalidOperationException($"Backward() needs a scalar loss, got {Tensor.Describe(loss.Shape)}.");
        GradOf(loss).Span[0] = seed;
        long mark = Stopwatch.GetTimestamp();
        for (int i = nodes.Count - 1; i >= 0; i--)
        {
            nodes[i].Backward(this);
            if (outputs[i] is Tensor y) ReleaseGrad(y);
            if (Profile != null) Charge("backward " + OpName(nodes[i]), ref mark);
        }
        nodes.Clear();
        outputs.Clear();
        lastMark = Stopwatch.GetTimestamp();
    }

    /// <summary>Forgets the recorded ops and returns activation storage for reuse; call once per step.</summary>
    public void Reset()
    {
        nodes.Clear();
        outputs.Clear();
        gradUsers.Clear();
        arena.Reset();
        lastMark = Stopwatch.GetTimestamp();
    }
}
