#!/usr/bin/python3
# Peer for `quill bench tokenize`: Debian's python3-sentencepiece.
#   spm_peer.py encode MODEL FILE [SECONDS]   -> {"peer": "sentencepiece", "mb_per_s": X, "tokens": N}
#   spm_peer.py train FILE VOCAB [THREADS]    -> {"peer": "sentencepiece", "seconds": S, "vocab": V}
# Text is read as raw UTF-8 (no newline translation), the same bytes Quill reads.
import json, os, sys, tempfile, time
import sentencepiece as spm

def encode(model, path, seconds):
    text = open(path, "rb").read().decode("utf-8")
    nbytes = len(text.encode("utf-8"))
    sp = spm.SentencePieceProcessor(model_file=model)
    # Encode line by line (as Quill's streaming callers do); whole-text BPE in sentencepiece is quadratic-ish.
    lines = text.split("\n")
    sp.encode(lines[:1000])
    best, start, tokens = float("inf"), time.perf_counter(), 0
    while True:
        t = time.perf_counter()
        tokens = sum(len(x) for x in sp.encode(lines))
        best = min(best, time.perf_counter() - t)
        if time.perf_counter() - start > seconds:
            break
    print(json.dumps({"peer": "sentencepiece", "mb_per_s": nbytes / best / 1e6, "tokens": tokens}))

def train(path, vocab, threads):
    with tempfile.TemporaryDirectory() as d:
        t = time.perf_counter()
        spm.SentencePieceTrainer.train(input=path, model_prefix=os.path.join(d, "m"), vocab_size=vocab, model_type="bpe",
                                       num_threads=threads, byte_fallback=True, hard_vocab_limit=False,
                                       max_sentence_length=1 << 20, input_sentence_size=0, minloglevel=2)
        print(json.dumps({"peer": "sentencepiece", "seconds": time.perf_counter() - t, "vocab": vocab}))

if __name__ == "__main__":
    if sys.argv[1] == "encode":
        encode(sys.argv[2], sys.argv[3], float(sys.argv[4]) if len(sys.argv) > 4 else 2.0)
    else:
        train(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]) if len(sys.argv) > 4 else 2)
