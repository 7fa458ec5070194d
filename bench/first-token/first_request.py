#!/usr/bin/env python3
"""Time to first token and tokens/s of the first requests to a freshly started `quill serve`.

Starts the server command given after `--` (it must print "Quill is serving ... at URL"), waits until it listens,
then sends --requests identical streaming /v1/completions (greedy, --tokens tokens, usage included) one after the
other and prints one JSON line per request: time to first token (ms), decode tokens/s (tokens after the first over
the time from the first token to the last), and the whole request's seconds. Stops the server at the end.
Usage: first_request.py [--tokens 128] [--requests 5] -- ./quill serve --model M --tokenizer T --port 8790
"""
import argparse
import http.client
import json
import re
import subprocess
import sys
import time


def one(host, port, model, tokens, prompt):
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": tokens, "temperature": 0, "stream": True,
                       "stream_options": {"include_usage": True}})
    c = http.client.HTTPConnection(host, port, timeout=600)
    t0 = time.perf_counter()
    c.request("POST", "/v1/completions", body, {"Content-Type": "application/json"})
    r = c.getresponse()
    first = last = None
    usage = None
    for raw in r:
        line = raw.decode().strip()
        if not line.startswith("data: ") or line == "data: [DONE]":
            continue
        ev = json.loads(line[6:])
        if ev.get("usage"):
            usage = ev["usage"]
        if ev["choices"] and ev["choices"][0]["text"]:
            now = time.perf_counter()
            first = first or now
            last = now
    end = time.perf_counter()
    n = usage["completion_tokens"]
    return {"ttft_ms": round((first - t0) * 1000, 1), "decode_tok_s": round((n - 1) / (last - first), 1),
            "seconds": round(end - t0, 3), "completion_tokens": n}


def main():
    argv = sys.argv[1:]
    cut = argv.index("--")
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--requests", type=int, default=5)
    ap.add_argument("--prompt", default="Once upon a time")
    ap.add_argument("--label", default="")
    a = ap.parse_args(argv[:cut])
    server = subprocess.Popen(argv[cut + 1:], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = None
    started = time.perf_counter()
    for line in server.stdout:
        m = re.search(r"Quill is serving (\S+) at http://([\d.]+):(\d+)/", line)
        if m:
            model, host, port = m.group(1), m.group(2), int(m.group(3))
            url = True
            break
    if not url:
        sys.exit("the server did not start")
    ready = time.perf_counter() - started
    try:
        for i in range(a.requests):
            res = one(host, port, model, a.tokens, a.prompt)
            res.update({"request": i + 1, "label": a.label, "server_ready_s": round(ready, 2)})
            print(json.dumps(res), flush=True)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
