// Checks that Hugging Face's tokenizers.js loads a tokenizer.json written by Quill and encodes like Quill.
// Usage: node check_hf_export.mjs TOKENIZER_JSON CASES_JSON
// CASES_JSON: [{"text": ..., "ids": [...]}, ...] as Quill encoded them. Prints one JSON line; exit code 1 on a mismatch.
import { readFileSync } from "node:fs";
import { Tokenizer } from "@huggingface/tokenizers";

const [tokPath, casesPath] = process.argv.slice(2);
const tok = new Tokenizer(JSON.parse(readFileSync(tokPath, "utf8")), {});
const cases = JSON.parse(readFileSync(casesPath, "utf8"));
let bad = 0;
for (const c of cases) {
  const ids = tok.encode(c.text, { add_special_tokens: false }).ids;
  if (JSON.stringify(ids) !== JSON.stringify(c.ids)) {
    bad++;
    if (bad <= 3) console.error(JSON.stringify({ text: c.text.slice(0, 80), quill: c.ids.slice(0, 20), hf: ids.slice(0, 20) }));
  }
}
console.log(JSON.stringify({ check: "hf tokenizer.json export", cases: cases.length, mismatches: bad }));
process.exit(bad ? 1 : 0);
