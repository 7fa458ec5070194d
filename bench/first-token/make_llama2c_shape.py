#!/usr/bin/env python3
"""Writes a llama2.c checkpoint (run.c's .bin layout) of a given shape with random weights, for timing only.

Default: stories15M's shape (dim 288, hidden 768, 6 layers, 6 heads, 6 kv heads, vocab 32000, seq_len 256), shared
classifier. Layout (llama2.c run.c): seven int32 (dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size,
seq_len), then float32 token embedding, rms_att, wq, wk, wv, wo, rms_ffn, w1, w2, w3, rms_final and the two
RoPE tables run.c skips. Usage: make_llama2c_shape.py OUT.bin [--seed N]
"""
import argparse
import struct

import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dim", type=int, default=288)
    ap.add_argument("--hidden", type=int, default=768)
    ap.add_argument("--layers", type=int, default=6)
    ap.add_argument("--heads", type=int, default=6)
    ap.add_argument("--kv-heads", type=int, default=6)
    ap.add_argument("--vocab", type=int, default=32000)
    ap.add_argument("--seq-len", type=int, default=256)
    a = ap.parse_args()
    rng = np.random.default_rng(a.seed)
    d, h, n, hd = a.dim, a.hidden, a.layers, a.dim // a.heads
    kv = a.kv_heads * hd

    def w(*shape):
        return (rng.standard_normal(shape, dtype=np.float32) * 0.02).astype("<f4")

    ones = lambda *shape: np.ones(shape, dtype="<f4")
    with open(a.out, "wb") as f:
        f.write(struct.pack("<7i", d, h, n, a.heads, a.kv_heads, a.vocab, a.seq_len))
        for t in [w(a.vocab, d), ones(n, d), w(n, d, d), w(n, kv, d), w(n, kv, d), w(n, d, d), ones(n, d),
                  w(n, h, d), w(n, d, h), w(n, h, d), ones(d),
                  np.zeros((a.seq_len, hd // 2), "<f4"), np.zeros((a.seq_len, hd // 2), "<f4")]:
            f.write(t.tobytes())


if __name__ == "__main__":
    main()
