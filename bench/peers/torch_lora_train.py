#!/usr/bin/python3
"""PyTorch peer for `quill bench lora`: one LoRA fine-tuning step on a Llama of a llama2.c TinyStories shape.

Written for Quill (plain PyTorch with PEFT's formulas, no peft package): a frozen Llama (RMSNorm, RoPE on adjacent
pairs, SwiGLU, no biases, head tied to the embedding as in llama2.c's stories models) with LoRA r 8 on q, k, v and
o: y = x W^T + scaling * (x A^T) B^T, A [r, in] Kaiming-uniform (nn.Linear's default), B [out, r] zero, scaling =
alpha / r. Only A and B require gradients; the step is forward + cross-entropy + backward + AdamW on A and B.
Random token data (--masked N: the first N targets of each row are -100, a prompt's); prints one JSON line with tokens_per_s (median of --runs runs of --steps steps, after a warm-up).

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 torch_lora_train.py --shape stories15M --batch 4 --seq 256 --threads 2

Run it with OMP_WAIT_POLICY=PASSIVE (PyTorch's best setting on two cores; quill bench lora sets it) and the thread
count Quill uses. Attention takes PyTorch's fused scaled_dot_product_attention (torch 1.13: the private op).
"""
import argparse, json, math, statistics, time

import torch
import torch.nn as nn
import torch.nn.functional as F

SHAPES = {  # dim, hidden, layers, heads, vocab
    "stories15M": (288, 768, 6, 6, 32000),
    "stories110M": (768, 2048, 12, 12, 32000),
}


def attention(q, k, v):
    if hasattr(F, "scaled_dot_product_attention"):  # torch >= 2.0
        return F.scaled_dot_product_attention(q, k, v, is_causal=True)
    return F._scaled_dot_product_attention(q, k, v, None, 0.0, False, True)[0]


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(d))

    def forward(self, x):
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


class LoraLinear(nn.Module):
    """A frozen nn.Linear plus PEFT's LoRA branch: base(x) + lora_B(lora_A(x)) * scaling."""

    def __init__(self, d_in, d_out, r, alpha):
        super().__init__()
        self.base = nn.Linear(d_in, d_out, bias=False)
        self.lora_A = nn.Linear(d_in, r, bias=False)   # kaiming_uniform_(a=sqrt(5)), PEFT's default
        self.lora_B = nn.Linear(r, d_out, bias=False)
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling


def rope_tables(hd, T, theta=10000.0):
    inv = 1.0 / (theta ** (torch.arange(0, hd, 2).float() / hd))
    ang = torch.outer(torch.arange(T).float(), inv)
    return ang.cos(), ang.sin()


def apply_rope(x, cos, sin):
    x0, x1 = x[..., 0::2], x[..., 1::2]
    return torch.stack((x0 * cos - x1 * sin, x0 * sin + x1 * cos), dim=-1).flatten(-2)


class Block(nn.Module):
    def __init__(self, d, h, nh, r, alpha):
        super().__init__()
        self.nh = nh
        self.n1, self.n2 = RMSNorm(d), RMSNorm(d)
        self.q, self.k, self.v, self.o = (LoraLinear(d, d, r, alpha) for _ in range(4))
        self.w1, self.w3 = nn.Linear(d, h, bias=False), nn.Linear(d, h, bias=False)
        self.w2 = nn.Linear(h, d, bias=False)

    def forward(self, x, cos, sin):
        B, T, C = x.shape
        a = self.n1(x)
        q, k, v = (p(a).view(B, T, self.nh, C // self.nh).transpose(1, 2) for p in (self.q, self.k, self.v))
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        x = x + self.o(attention(q, k, v).transpose(1, 2).reshape(B, T, C))
        m = self.n2(x)
        return x + self.w2(F.silu(self.w1(m)) * self.w3(m))


class Model(nn.Module):
    def __init__(self, shape, seq, r, alpha):
        super().__init__()
        d, h, L, nh, V = shape
        self.wte = nn.Embedding(V, d)
        self.blocks = nn.ModuleList(Block(d, h, nh, r, alpha) for _ in range(L))
        self.nf = RMSNorm(d)
        self.head = nn.Linear(d, V, bias=False)
        self.head.weight = self.wte.weight
        cos, sin = rope_tables(d // nh, seq)
        self.register_buffer("cos", cos, persistent=False)
        self.register_buffer("sin", sin, persistent=False)

    def forward(self, idx, targets):
        x = self.wte(idx)
        for b in self.blocks:
            x = b(x, self.cos, self.sin)
        logits = self.head(self.nf(x))
        return F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--shape", default="stories15M", choices=sorted(SHAPES))
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--seq", type=int, default=256)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--alpha", type=float, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--masked", type=int, default=0, help="targets masked (-100) at the start of each row, a prompt's")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    model = Model(SHAPES[a.shape], a.seq, a.rank, a.alpha)
    for n, p in model.named_parameters():
        if "lora_" not in n:
            p.requires_grad_(False)
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)
    trainable = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(trainable, lr=1e-4, weight_decay=0.0)
    V = SHAPES[a.shape][4]
    g = torch.Generator().manual_seed(1)
    x = torch.randint(0, V, (a.batch, a.seq), generator=g)
    y = torch.randint(0, V, (a.batch, a.seq), generator=g)
    y[:, :a.masked] = -100  # cross_entropy's ignore_index, as Hugging Face's causal LMs mask prompts

    def step():
        loss = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss

    step()  # warm-up
    ms = []
    for _ in range(a.runs):
        t0 = time.perf_counter()
        for _ in range(a.steps):
            loss = step()
        ms.append((time.perf_counter() - t0) / a.steps * 1e3)
    med = statistics.median(ms)
    print(json.dumps(dict(shape=a.shape, batch=a.batch, seq=a.seq, masked=a.masked * a.batch, rank=a.rank, threads=torch.get_num_threads(),
                          trainable=sum(p.numel() for p in trainable), torch=torch.__version__,
                          ms_per_step=round(med, 1), tokens_per_s=round(a.batch * a.seq / med * 1e3, 1),
                          loss=round(float(loss), 3))), flush=True)


if __name__ == "__main__":
    main()
