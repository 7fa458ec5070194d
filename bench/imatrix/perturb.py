# Writes a copy of an F32 GGUF whose layer matrices (blk.*, 2-D) are multiplied elementwise by (1 + EPS N(0,1)) with
# SEED: the same model to within EPS, but another draw of Q4_0's rounding choices (how much KL moves by chance).
# usage: python3 perturb.py IN.gguf OUT.gguf EPS SEED
import sys
import numpy as np
import gguf_read

src, dst, eps, seed = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
b = bytearray(open(src, 'rb').read())
kv, ts, base = gguf_read.parse(b)
rng = np.random.default_rng(seed)
for name, dims, t, off in ts:
    if name.startswith('blk.') and len(dims) == 2 and t == 0:
        n, p = int(np.prod(dims)), base + off
        a = np.frombuffer(bytes(b[p:p + 4 * n]), np.float32) * (1 + eps * rng.standard_normal(n)).astype(np.float32)
        b[p:p + 4 * n] = a.astype(np.float32).tobytes()
open(dst, 'wb').write(b)
