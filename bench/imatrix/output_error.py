# The true output error of each quantized layer matrix on the model's own activations: mean over tokens of
# ||x (W - Q)^T||^2, x the matrix's input in the F32 model's float64 forward over TOKENS tokens of TEXT (this uses
# every correlation between input columns, which the importance matrix's diagonal leaves out), for the plain and
# the imatrix Q4_0 file; beside it that diagonal estimate and the output gain <y, y_q> / <y, y>.
# usage: python3 output_error.py F32.gguf PLAIN_Q4_0.gguf IMATRIX_Q4_0.gguf TEXT TOKENS
import sys
import numpy as np
import gguf_read
from forward import forward, targets, tokens

kv, T = gguf_read.read(sys.argv[1])
_, P = gguf_read.read(sys.argv[2])
_, I = gguf_read.read(sys.argv[3])
data = tokens(kv, open(sys.argv[4], encoding='utf-8').read(), int(sys.argv[5]))
inputs = {}
lp = forward(kv, T, data, lambda name, x: inputs.setdefault(name, []).append(x.copy()))
print(f"numpy F32 forward: {len(lp)} predictions, perplexity {np.exp(-lp[np.arange(len(lp)), targets(kv, data)].mean()):.4f}")
print(f"{'matrix':26} {'true plain':>10} {'true imat':>10} {'chg':>7} | {'diag plain':>10} {'diag imat':>10} {'chg':>7} | {'gain plain':>10} {'gain imat':>10}")
tp = ti = 0.0
for name, xs in inputs.items():
    if P[name] is None:
        continue
    X, W = np.concatenate(xs), T[name]
    Ep, Ei = W - P[name], W - I[name]
    true_p, true_i = ((X @ Ep.T) ** 2).sum(1).mean(), ((X @ Ei.T) ** 2).sum(1).mean()
    m2 = (X * X).mean(0)
    dp, di = (m2 * (Ep ** 2).sum(0)).sum(), (m2 * (Ei ** 2).sum(0)).sum()
    Y = X @ W.T
    gp, gi = (Y * (X @ P[name].T)).sum() / (Y * Y).sum(), (Y * (X @ I[name].T)).sum() / (Y * Y).sum()
    tp += true_p
    ti += true_i
    print(f"{name:26} {true_p:10.4g} {true_i:10.4g} {100 * (true_i / true_p - 1):+6.1f}% | {dp:10.4g} {di:10.4g} {100 * (di / dp - 1):+6.1f}% | {gp:10.5f} {gi:10.5f}")
print(f"all matrices: true output error {100 * (ti / tp - 1):+.1f}%")
