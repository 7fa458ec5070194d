// PyTorch 2.10 peer for `quill bench lora` (libtorch through TorchSharp): the same LoRA step as ../torch_lora_train.py,
// written for Quill. A frozen Llama of a llama2.c TinyStories shape (RMSNorm, RoPE on adjacent pairs, SwiGLU, no
// biases, head tied to the embedding) with PEFT's LoRA on q, k, v, o: y = x W^T + scaling * (x A^T) B^T, A [r, in]
// Kaiming-uniform (nn.Linear's default), B [out, r] zero; forward + cross-entropy + backward + AdamW on A and B only.
// usage (through run.sh): --shape S --batch B --seq T --rank R --alpha A --threads N --runs R --steps S --masked M
// Prints one JSON line with tokens_per_s (median of the runs, after a warm-up step).
using System.Diagnostics;
using System.Globalization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using static TorchSharp.torch.nn;
using F = TorchSharp.torch.nn.functional;

var opts = new Dictionary<string, string>();
for (int i = 0; i + 1 < args.Length; i += 2) opts[args[i].TrimStart('-')] = args[i + 1];
string Opt(string name, string fallback) => opts.TryGetValue(name, out var v) ? v : fallback;
int IntOpt(string name, int fallback) => int.Parse(Opt(name, fallback.ToString(CultureInfo.InvariantCulture)), CultureInfo.InvariantCulture);

string shape = Opt("shape", "stories15M");
var (dim, hidden, layers, heads, vocab) = shape switch
{
    "stories15M" => (288, 768, 6, 6, 32000),
    "stories110M" => (768, 2048, 12, 12, 32000),
    _ => throw new ArgumentException($"unknown shape {shape}"),
};
int batch = IntOpt("batch", 4), seq = IntOpt("seq", 256), rank = IntOpt("rank", 8), threads = IntOpt("threads", 2);
int runs = IntOpt("runs", 3), steps = IntOpt("steps", 3), masked = IntOpt("masked", 0);
double alpha = double.Parse(Opt("alpha", "16"), CultureInfo.InvariantCulture);
torch.set_num_threads(threads);
torch.manual_seed(0);

var model = new LoraLlama(dim, hidden, layers, heads, vocab, seq, rank, alpha);
var trainable = new List<Parameter>();
foreach (var (name, p) in model.named_parameters())
{
    if (name.Contains("lora_", StringComparison.Ordinal)) { trainable.Add(p); continue; }
    p.requires_grad = false;
    if (p.dim() == 2) using (torch.no_grad()) torch.nn.init.normal_(p, 0.0, 0.02);
}
var opt = torch.optim.AdamW(trainable, lr: 1e-4, weight_decay: 0.0);
var gen = new torch.Generator(1);
var x = torch.randint(0, vocab, new long[] { batch, seq }, generator: gen);
var y = torch.randint(0, vocab, new long[] { batch, seq }, generator: gen);
if (masked > 0) y[.., ..masked] = torch.tensor(-100L);

float Step()
{
    using var scope = torch.NewDisposeScope();
    var logits = model.forward(x);
    var loss = F.cross_entropy(logits.view(-1, vocab), y.view(-1), ignore_index: -100);
    loss.backward();
    opt.step();
    opt.zero_grad();
    return loss.item<float>();
}

Step();
var ms = new List<double>();
float last = 0;
for (int r = 0; r < runs; r++)
{
    var sw = Stopwatch.StartNew();
    for (int s = 0; s < steps; s++) last = Step();
    ms.Add(sw.Elapsed.TotalMilliseconds / steps);
}
ms.Sort();
double med = ms[ms.Count / 2];
long trainableCount = trainable.Sum(p => p.numel());
Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
    $"{{\"peer\":\"torchsharp-{torch.__version__}\",\"shape\":\"{shape}\",\"batch\":{batch},\"seq\":{seq},\"rank\":{rank},\"threads\":{threads},\"trainable\":{trainableCount},\"ms_per_step\":{med:F1},\"tokens_per_s\":{batch * seq / med * 1e3:F1},\"loss\":{last:F3}}}"));

/// <summary>A frozen nn.Linear plus PEFT's LoRA branch: base(x) + lora_B(lora_A(x)) * scaling.</summary>
sealed class LoraLinear : Module<Tensor, Tensor>
{
    private readonly Linear @base, lora_A, lora_B;
    private readonly double scaling;

    public LoraLinear(int dIn, int dOut, int r, double alpha) : base("lora_linear")
    {
        @base = Linear(dIn, dOut, hasBias: false);
        lora_A = Linear(dIn, r, hasBias: false);
        lora_B = Linear(r, dOut, hasBias: false);
        using (torch.no_grad()) torch.nn.init.zeros_(lora_B.weight!);
        scaling = alpha / r;
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => @base.forward(x) + lora_B.forward(lora_A.forward(x)) * scaling;
}

sealed class RmsNorm : Module<Tensor, Tensor>
{
    private readonly Parameter weight;

    public RmsNorm(int d) : base("rms")
    {
        weight = new Parameter(torch.ones(d));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => x * torch.rsqrt(x.pow(2).mean(new long[] { -1 }, keepdim: true) + 1e-5) * weight;
}

sealed class Block : Module<Tensor, Tensor>
{
    private readonly RmsNorm n1, n2;
    private readonly LoraLinear q, k, v, o;
    private readonly Linear w1, w2, w3;
    private readonly int nh;
    private readonly Tensor cos, sin;

    public Block(int d, int h, int nh, int r, double alpha, Tensor cos, Tensor sin) : base("block")
    {
        this.nh = nh;
        this.cos = cos;
        this.sin = sin;
        n1 = new RmsNorm(d);
        n2 = new RmsNorm(d);
        q = new LoraLinear(d, d, r, alpha);
        k = new LoraLinear(d, d, r, alpha);
        v = new LoraLinear(d, d, r, alpha);
        o = new LoraLinear(d, d, r, alpha);
        w1 = Linear(d, h, hasBias: false);
        w3 = Linear(d, h, hasBias: false);
        w2 = Linear(h, d, hasBias: false);
        RegisterComponents();
    }

    /// <summary>Rotates adjacent pairs (x[2i], x[2i+1]) of the last dimension, as llama2.c and the Python peer.</summary>
    private Tensor Rope(Tensor t)
    {
        var shape = t.shape;
        var pairs = t.view(shape[0], shape[1], shape[2], shape[3] / 2, 2);
        var x0 = pairs[TensorIndex.Ellipsis, 0];
        var x1 = pairs[TensorIndex.Ellipsis, 1];
        return torch.stack(new[] { x0 * cos - x1 * sin, x0 * sin + x1 * cos }, -1).flatten(-2);
    }

    public override Tensor forward(Tensor x)
    {
        long B = x.shape[0], T = x.shape[1], C = x.shape[2];
        var a = n1.forward(x);
        var qh = Rope(q.forward(a).view(B, T, nh, C / nh).transpose(1, 2));
        var kh = Rope(k.forward(a).view(B, T, nh, C / nh).transpose(1, 2));
        var vh = v.forward(a).view(B, T, nh, C / nh).transpose(1, 2);
        var att = F.scaled_dot_product_attention(qh, kh, vh, is_casual: true);
        x = x + o.forward(att.transpose(1, 2).reshape(B, T, C));
        var m = n2.forward(x);
        return x + w2.forward(F.silu(w1.forward(m)) * w3.forward(m));
    }
}

sealed class LoraLlama : Module<Tensor, Tensor>
{
    private readonly Embedding wte;
    private readonly ModuleList<Block> blocks;
    private readonly RmsNorm nf;

    public LoraLlama(int d, int h, int layers, int nh, int vocab, int seq, int r, double alpha) : base("llama")
    {
        int hd = d / nh;
        var inv = 1.0 / torch.pow(10000.0, torch.arange(0, hd, 2).to(float32) / hd);
        var ang = torch.outer(torch.arange(seq).to(float32), inv);
        Tensor cos = ang.cos(), sin = ang.sin();
        wte = Embedding(vocab, d);
        blocks = new ModuleList<Block>(Enumerable.Range(0, layers).Select(_ => new Block(d, h, nh, r, alpha, cos, sin)).ToArray());
        nf = new RmsNorm(d);
        RegisterComponents();
    }

    public override Tensor forward(Tensor idx)
    {
        var x = wte.forward(idx);
        foreach (var b in blocks) x = b.forward(x);
        return F.linear(nf.forward(x), wte.weight!);   // tied head, as llama2.c's stories models
    }
}
