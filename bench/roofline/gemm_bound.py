#!/usr/bin/env python3
"""GEMM-only ceiling of a training step: how many tokens/s the step's matrix products alone allow.

Reads `quill bench gemm --threads 2 --only 110M` and/or `--only gpt-mini` JSON lines on stdin and, for the
stories110M LoRA step (4 x 256 tokens: frozen q/k/v/o and SwiGLU projections, forward and input gradient, plus the
tied head's two) and the gpt-mini training step (8 x 256 tokens: forward, input and weight gradient of every
linear layer and the head), adds up each product's FLOPs divided by the rate measured for its shape. The result is
an upper bound on tokens/s: the step also runs attention, norms, activations, the loss and the optimizer.
Usage: quill bench gemm --threads 2 --only 110M --seconds 0.3 | python3 bench/roofline/gemm_bound.py
"""
import json
import re
import sys

rates, shapes = {}, {}
for line in sys.stdin:
    if not line.startswith("{"):
        continue
    j = json.loads(line)
    if j.get("bench") != "gemm" or j.get("threads") != 2:
        continue
    m = re.match(r"sgemm (.+?) (\d+)x(\d+)x(\d+) ", j["shape"])
    rates[m.group(1)] = (j["quill"], j.get("peer"))
    shapes[m.group(1)] = tuple(int(m.group(i)) for i in (2, 3, 4))


def show(title, products, tokens):
    for which, who in ((0, "Quill"), (1, "OpenBLAS")):
        if any(rates[n][which] is None for n, _ in products):
            continue
        seconds = flops = 0.0
        for name, count in products:
            m, n, k = shapes[name]
            f = 2.0 * m * n * k * count
            flops += f
            seconds += f / (rates[name][which] * 1e9)
        print(f"{title}: {flops / tokens / 1e6:.1f} MFLOP/token of GEMMs at {who}'s rates "
              f"({flops / seconds / 1e9:.1f} GFLOP/s weighted) -> GEMM-only ceiling {tokens / seconds:.0f} tokens/s")


if any(k.startswith("110M") for k in rates):
    L = 12
    show("LoRA stories110M, 4 x 256", [("110M q forward", 4 * L), ("110M q input grad", 4 * L),
                                       ("110M w1 forward", 2 * L), ("110M w1 input grad", 2 * L),
                                       ("110M w2 forward", L), ("110M w2 input grad", L),
                                       ("110M head forward", 1), ("110M head input grad", 1)], 1024)
if any(k.startswith("gpt-mini") for k in rates):
    L = 6
    products = []
    for name in rates:
        m = re.match(r"gpt-mini (.+) (forward|input grad|weight grad)$", name)
        if not m:
            continue
        count = 1 if m.group(1) == "lm head" else L
        if m.group(1) == "proj" and m.group(2) == "forward":
            count = 2 * L  # proj's input gradient (the same size, NN) is not in the benchmark's list
        products.append((name, count))
    show("gpt-mini training, 8 x 256", products, 2048)
