// The JavaScript client's side of bench/tokenizer-vs-js.sh: @lenml/tokenizers 3.7.2 (installed by
// `npm ci` in tests/tokenizers) encoding and decoding a text file with a tokenizer directory, in
// the same loop as bench/bench_tokenizer.c. Prints the same line.
//
//   node bench/tokenizer-speed.mjs TOKENIZER_DIR TEXT [SECONDS]
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";

const require = createRequire(path.resolve(path.dirname(new URL(import.meta.url).pathname), "../tests/tokenizers/package.json"));
const { TokenizerLoader } = require("@lenml/tokenizers");
const [dir, file, secondsArg] = process.argv.slice(2);
const seconds = Number(secondsArg ?? 2);
const text = fs.readFileSync(file, "utf8");
const bytes = fs.statSync(file).size;
let t0 = performance.now();
const tok = TokenizerLoader.fromPreTrained({
  tokenizerJSON: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer.json"), "utf8")),
  tokenizerConfig: JSON.parse(fs.readFileSync(path.join(dir, "tokenizer_config.json"), "utf8")),
});
const load = (performance.now() - t0) / 1000;
let ids, passes = 0;
t0 = performance.now();
do {
  ids = tok.encode(text);
  passes++;
} while (performance.now() - t0 < seconds * 1000);
const encode = (performance.now() - t0) / 1000 / passes;
let decPasses = 0;
t0 = performance.now();
do {
  tok.decode(ids, { skip_special_tokens: true });
  decPasses++;
} while (performance.now() - t0 < (seconds * 1000) / 2);
const decode = (performance.now() - t0) / 1000 / decPasses;
console.log(`load ${load.toFixed(3)} s, encode ${(bytes / encode / 1e6).toFixed(2)} MB/s, decode ${(bytes / decode / 1e6).toFixed(2)} MB/s, ${ids.length} tokens per pass`);
