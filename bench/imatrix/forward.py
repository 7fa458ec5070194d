# float64 numpy forward of a small gpt2 or llama GGUF (F32 weights; llama.cpp's layout: q/k rows in adjacent-pair RoPE
# order), calling rec(matrix name, input rows) for every layer product's input, returning log-probabilities.
import numpy as np


def tokens(kv, text, limit):
    """A character-tokenized model's ids for text (Quill's char export: space as U+2581, newline as <0x0A>)."""
    ids = {t: i for i, t in enumerate(kv['tokenizer.ggml.tokens'])}
    special = {' ': '\u2581', '\n': '<0x0A>' if '<0x0A>' in ids else '\n'}
    out = [ids[special.get(c, c)] for c in text if special.get(c, c) in ids]
    return out[:limit]


def window(kv):
    """Tokens per scored window: the model's context, at most 256."""
    return min(kv[kv['general.architecture'] + '.context_length'], 256)


def targets(kv, data):
    """The token each row of forward's output predicts."""
    w = window(kv)
    return [t for w0 in range(0, len(data) - 1, w) for t in data[w0 + 1:w0 + 1 + w] if len(data[w0:w0 + w + 1]) > 2]


def forward(kv, T, data, rec=None):
    arch = kv['general.architecture']
    L, H = kv[f'{arch}.block_count'], kv[f'{arch}.attention.head_count']
    ctx = window(kv)
    eps = kv.get(f'{arch}.attention.layer_norm_epsilon', kv.get(f'{arch}.attention.layer_norm_rms_epsilon', 1e-5))
    rec = rec or (lambda name, x: None)

    def ln(x, w, b):
        m = x.mean(-1, keepdims=True)
        return (x - m) / np.sqrt(((x - m) ** 2).mean(-1, keepdims=True) + eps) * w + b

    def rms(x, w):
        return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w

    def attn(q, k, v, n):
        d = q.shape[1] // H
        out, mask = np.zeros_like(q), np.triu(np.full((n, n), -np.inf), 1)
        for h in range(H):
            sl = slice(h * d, (h + 1) * d)
            s = q[:, sl] @ k[:, sl].T / np.sqrt(d) + mask
            p = np.exp(s - s.max(-1, keepdims=True))
            out[:, sl] = (p / p.sum(-1, keepdims=True)) @ v[:, sl]
        return out

    def rope(x, n):
        d = x.shape[1] // H
        inv = kv.get(f'{arch}.rope.freq_base', 10000.0) ** (-np.arange(0, d, 2) / d)
        ang = np.arange(n)[:, None] * inv[None, :]
        c, s = np.cos(ang)[:, None], np.sin(ang)[:, None]
        y = x.copy().reshape(n, H, d // 2, 2)
        a, b = y[..., 0].copy(), y[..., 1].copy()
        y[..., 0], y[..., 1] = a * c - b * s, a * s + b * c
        return y.reshape(n, -1)

    def gelu(x):
        return 0.5 * x * (1 + np.tanh(0.7978845608 * (x + 0.044715 * x ** 3)))

    outs = []
    for w0 in range(0, len(data) - 1, ctx):
        seq = data[w0:w0 + ctx + 1]
        n = len(seq) - 1
        if n < 2:
            break
        x = T['token_embd.weight'][seq[:n]].astype(np.float64)
        if arch == 'gpt2':
            x = x + T['position_embd.weight'][:n]
        for l in range(L):
            p = f'blk.{l}.'
            if arch == 'gpt2':
                h = ln(x, T[p + 'attn_norm.weight'], T[p + 'attn_norm.bias'])
                rec(p + 'attn_qkv.weight', h)
                qkv = h @ T[p + 'attn_qkv.weight'].T + T[p + 'attn_qkv.bias']
                c = x.shape[1]
                a = attn(qkv[:, :c], qkv[:, c:2 * c], qkv[:, 2 * c:], n)
                rec(p + 'attn_output.weight', a)
                x = x + a @ T[p + 'attn_output.weight'].T + T[p + 'attn_output.bias']
                h = ln(x, T[p + 'ffn_norm.weight'], T[p + 'ffn_norm.bias'])
                rec(p + 'ffn_up.weight', h)
                u = gelu(h @ T[p + 'ffn_up.weight'].T + T[p + 'ffn_up.bias'])
                rec(p + 'ffn_down.weight', u)
                x = x + u @ T[p + 'ffn_down.weight'].T + T[p + 'ffn_down.bias']
            else:
                h = rms(x, T[p + 'attn_norm.weight'])
                for m in ('attn_q', 'attn_k', 'attn_v'):
                    rec(p + m + '.weight', h)
                q, k = rope(h @ T[p + 'attn_q.weight'].T, n), rope(h @ T[p + 'attn_k.weight'].T, n)
                a = attn(q, k, h @ T[p + 'attn_v.weight'].T, n)
                rec(p + 'attn_output.weight', a)
                x = x + a @ T[p + 'attn_output.weight'].T
                h = rms(x, T[p + 'ffn_norm.weight'])
                rec(p + 'ffn_gate.weight', h)
                rec(p + 'ffn_up.weight', h)
                g = h @ T[p + 'ffn_gate.weight'].T
                u = g / (1 + np.exp(-g)) * (h @ T[p + 'ffn_up.weight'].T)
                rec(p + 'ffn_down.weight', u)
                x = x + u @ T[p + 'ffn_down.weight'].T
        h = ln(x, T['output_norm.weight'], T['output_norm.bias']) if arch == 'gpt2' else rms(x, T['output_norm.weight'])
        lo = h @ T.get('output.weight', T['token_embd.weight']).T
        lo = lo - lo.max(-1, keepdims=True)
        outs.append(lo - np.log(np.exp(lo).sum(-1, keepdims=True)))
    return np.concatenate(outs)
