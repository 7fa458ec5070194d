# KL divergence (F32 || quantized) of the float64 forward with ONE layer matrix taken from the plain or the imatrix
# Q4_0 file and every other weight F32, for each matrix, then with all of them (millinats, TOKENS tokens of TEXT):
# which matrices the importance weighting helps and which it hurts.
# usage: python3 kl_per_matrix.py F32.gguf PLAIN_Q4_0.gguf IMATRIX_Q4_0.gguf TEXT TOKENS
import sys
import numpy as np
import gguf_read
from forward import forward, tokens

kv, T = gguf_read.read(sys.argv[1])
_, P = gguf_read.read(sys.argv[2])
_, I = gguf_read.read(sys.argv[3])
data = tokens(kv, open(sys.argv[4], encoding='utf-8').read(), int(sys.argv[5]))
base = forward(kv, T, data)
pb = np.exp(base)


def kl(weights):
    return 1000 * (pb * (base - forward(kv, weights, data))).sum(1).mean()


print(f"{'matrix':26} {'KL plain':>9} {'KL imat':>9} {'chg':>7}   (millinats, only that matrix quantized)")
allp, alli = dict(T), dict(T)
for name in [n for n in T if n.startswith('blk.') and T[n].ndim == 2 and P[n] is not None]:
    allp[name], alli[name] = P[name], I[name]
    a, b = kl({**T, name: P[name]}), kl({**T, name: I[name]})
    print(f"{name:26} {a:9.4f} {b:9.4f} {100 * (b / a - 1):+6.1f}%", flush=True)
a, b = kl(allp), kl(alli)
print(f"{'all layer matrices':26} {a:9.4f} {b:9.4f} {100 * (b / a - 1):+6.1f}%")
