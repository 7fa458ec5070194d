// Peer for `quill bench tokenize`: js-tiktoken encode throughput on a text file.
// Usage: node tiktoken_peer.mjs <gpt2|r50k_base|cl100k_base|o200k_base> <file> [threads] [seconds]
// Prints one JSON line: {"peer":"js-tiktoken","encoding":...,"threads":N,"mb_per_s":X,"tokens":T}.
// With threads > 1 the text is cut into that many slices at newlines, each encoded in its own worker thread.
import { readFileSync } from "node:fs";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import { getEncoding } from "js-tiktoken";

function encodeFor(encoding, text, seconds) {
  const enc = getEncoding(encoding);
  enc.encode(text.slice(0, 100000)); // warm up the JIT
  let runs = 0, tokens = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0;
  do {
    tokens = enc.encode(text).length;
    runs++;
    elapsed = Number(process.hrtime.bigint() - start) / 1e9;
  } while (elapsed < seconds);
  return { runs, tokens, elapsed };
}

if (!isMainThread) {
  const { encoding, text, seconds } = workerData;
  parentPort.postMessage(encodeFor(encoding, text, seconds));
} else {
  const [encoding, file, threadsArg, secondsArg] = process.argv.slice(2);
  const threads = Number(threadsArg ?? 1);
  const seconds = Number(secondsArg ?? 2);
  const text = readFileSync(file, "utf8");
  const bytes = Buffer.byteLength(text, "utf8");
  if (threads <= 1) {
    const r = encodeFor(encoding, text, seconds);
    console.log(JSON.stringify({ peer: "js-tiktoken", encoding, threads: 1, mb_per_s: (bytes * r.runs) / r.elapsed / 1e6, tokens: r.tokens }));
  } else {
    const slices = [];
    let pos = 0;
    for (let t = 1; t <= threads; t++) {
      let end = t === threads ? text.length : text.indexOf("\n", Math.floor((text.length * t) / threads));
      if (end < 0) end = text.length;
      slices.push(text.slice(pos, end));
      pos = end;
    }
    const results = await Promise.all(slices.map((s) => new Promise((resolve, reject) => {
      const w = new Worker(new URL(import.meta.url), { workerData: { encoding, text: s, seconds } });
      w.on("message", resolve);
      w.on("error", reject);
    })));
    let mbps = 0, tokens = 0;
    results.forEach((r, i) => {
      mbps += (Buffer.byteLength(slices[i], "utf8") * r.runs) / r.elapsed / 1e6;
      tokens += r.tokens;
    });
    console.log(JSON.stringify({ peer: "js-tiktoken", encoding, threads, mb_per_s: mbps, tokens }));
  }
}
