# Copy of a GGUF importance matrix with every column's mean squared activation set to 1 (in_sum2 = counts): ggml's
# weighted search with uniform importance, which separates the search from the weighting.
# usage: python3 ones.py IMATRIX.gguf OUT.gguf
import struct
import sys
import numpy as np
import gguf_read

b = bytearray(open(sys.argv[1], 'rb').read())
kv, ts, base = gguf_read.parse(b)
info = {name: (dims, off) for name, dims, t, off in ts}
for name, (dims, off) in info.items():
    if name.endswith('.in_sum2'):
        count = struct.unpack_from('<f', b, base + info[name[:-len('.in_sum2')] + '.counts'][1])[0]
        n, p = int(np.prod(dims)), base + off
        b[p:p + 4 * n] = np.full(n, count, np.float32).tobytes()
open(sys.argv[2], 'wb').write(b)
