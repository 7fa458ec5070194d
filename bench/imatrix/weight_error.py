# Per layer matrix of an F32 GGUF and its plain and imatrix Q4_0 files: the weights' excess kurtosis, how uneven the
# importance is (largest / mean, coefficient of variation), and the importance-weighted squared rounding error
# sum_j imp_j sum_rows (W - Q)_rj^2 that ggml's weighted search lowers (and the unweighted one's change).
# usage: python3 weight_error.py F32.gguf PLAIN_Q4_0.gguf IMATRIX_Q4_0.gguf IMATRIX.gguf
import sys
import numpy as np
import gguf_read

_, f32 = gguf_read.read(sys.argv[1])
_, plain = gguf_read.read(sys.argv[2])
_, imat = gguf_read.read(sys.argv[3])
_, im = gguf_read.read(sys.argv[4])
print(f"{'matrix':28} {'kurt':>6} {'imp max/mean':>12} {'imp CV':>7} {'wErr plain':>11} {'wErr imat':>11} {'change':>7} {'uErr chg':>8}")
tot, ks, cvs = [0.0, 0.0], [], []
for name, W in f32.items():
    if name + '.in_sum2' not in im or plain[name] is None or W.ndim != 2:
        continue
    imp = im[name + '.in_sum2'].reshape(-1)[:W.shape[1]] / im[name + '.counts'].reshape(-1)[0]
    k = ((W - W.mean()) ** 4).mean() / W.var() ** 2 - 3
    ep, ei = ((W - plain[name]) ** 2).sum(0), ((W - imat[name]) ** 2).sum(0)
    wp, wi = (imp * ep).sum(), (imp * ei).sum()
    tot[0] += wp
    tot[1] += wi
    ks.append(k)
    cvs.append(imp.std() / imp.mean())
    print(f"{name:28} {k:6.2f} {imp.max() / imp.mean():12.1f} {cvs[-1]:7.2f} {wp:11.4g} {wi:11.4g} {100 * (wi / wp - 1):+6.1f}% {100 * (ei.sum() / ep.sum() - 1):+7.1f}%")
print(f"total weighted error change {100 * (tot[1] / tot[0] - 1):+.1f}%; weight excess kurtosis median {np.median(ks):.2f} "
      f"max {max(ks):.2f}; importance CV median {np.median(cvs):.2f} max {max(cvs):.2f}")
