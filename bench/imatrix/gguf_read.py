# Minimal GGUF reader for the imatrix diagnostics (numpy): metadata, and tensors as float32 arrays for F32, F16 and
# Q4_0 (dequantized: 32 values per block, f16 scale d, value = (nibble - 8) d, low nibbles first). Other types: None.
import struct
import numpy as np

_SIZES = {0: '<B', 1: '<b', 2: '<H', 3: '<h', 4: '<I', 5: '<i', 6: '<f', 7: '<?', 10: '<Q', 11: '<q', 12: '<d'}


def parse(b):
    """(metadata dict, [(name, dims, type, offset)], data base offset) of a GGUF file's bytes."""
    o = 4

    def u(fmt):
        nonlocal o
        v = struct.unpack_from(fmt, b, o)[0]
        o += struct.calcsize(fmt)
        return v

    def s():
        nonlocal o
        n = u('<Q')
        v = bytes(b[o:o + n]).decode('utf-8', 'replace')
        o += n
        return v

    def val(t):
        if t == 8:
            return s()
        if t == 9:
            et = u('<I')
            return [val(et) for _ in range(u('<Q'))]
        return u(_SIZES[t])

    assert bytes(b[:4]) == b'GGUF'
    u('<I')
    nt, nk = u('<Q'), u('<Q')
    kv = {}
    for _ in range(nk):
        k = s()
        kv[k] = val(u('<I'))
    ts = []
    for _ in range(nt):
        name = s()
        dims = [u('<Q') for _ in range(u('<I'))]
        ts.append((name, dims, u('<I'), u('<Q')))
    al = kv.get('general.alignment', 32)
    return kv, ts, (o + al - 1) // al * al


def read(path):
    """(metadata, {name: array shaped [rows, cols] (numpy order) or None})."""
    b = open(path, 'rb').read()
    kv, ts, base = parse(b)
    out = {}
    for name, dims, t, off in ts:
        n, p = int(np.prod(dims)), base + off
        if t == 0:
            a = np.frombuffer(b, np.float32, n, p)
        elif t == 1:
            a = np.frombuffer(b, np.float16, n, p).astype(np.float32)
        elif t == 2:
            raw = np.frombuffer(b, np.uint8, n // 32 * 18, p).reshape(-1, 18)
            d = raw[:, :2].copy().view(np.float16).astype(np.float32)
            q = raw[:, 2:]
            a = (np.concatenate([(q & 15).astype(np.float32) - 8, (q >> 4).astype(np.float32) - 8], 1) * d).reshape(-1)
        else:
            a = None
        out[name] = a.reshape(list(reversed(dims))) if a is not None else None
    return kv, out
