// llama.cpp's tokenization of the golden strings (tests/tokenizers/strings.json) with the
// vocabulary of a GGUF file that fipsc wrote from a tokenizer.json, compared with the ids that
// tokenizer gives (tests/tokenizers/golden-NAME.json; fipsc gives the same ids,
// test_tokenizer_goldens): llama.cpp, independent of both, checks that the GGUF vocabulary means
// what the tokenizer.json means.
//
//   node tokenize.mjs MODEL.gguf NAME [MIN_AGREEMENT] [--nfc]
//
// Each string is read as Node.js reads UTF-8 (ill-formed bytes -> U+FFFD) and tokenized by
// llama.cpp with special-token parsing on; the BOS that the tokenizer.json's post-processor puts
// first (when it does) is left out. --nfc gives llama.cpp the NFC form of each string: llama.cpp
// does not apply a tokenizer's NFC normalizer (Qwen's), so without it every decomposed character
// differs. Prints how many strings agree and the first disagreements; exits 1 when the agreeing
// fraction is below MIN_AGREEMENT (default 1).
import { readFileSync } from "node:fs";
import path from "node:path";
import { getLlama } from "node-llama-cpp";

const args = process.argv.slice(2).filter((a) => a !== "--nfc");
const nfc = process.argv.includes("--nfc");
const [modelPath, name, minArg] = args;
if (!name) {
  console.error("usage: node tokenize.mjs MODEL.gguf NAME [MIN_AGREEMENT]");
  process.exit(2);
}
const minAgreement = Number(minArg ?? 1);
const here = path.dirname(new URL(import.meta.url).pathname);
const strings = JSON.parse(readFileSync(path.join(here, "../tokenizers/strings.json"), "utf8")).strings_b64;
const golden = JSON.parse(readFileSync(path.join(here, `../tokenizers/golden-${name}.json`), "utf8")).cases;

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath, useMmap: true });
const bos = model.tokens.bos;
const templateBos = golden[0].ids.length === 1 && golden[0].ids[0] === bos; // case 0 is the empty string
let same = 0, compared = 0;
const shown = [];
for (let i = 0; i < strings.length; i++) {
  const read = Buffer.from(strings[i], "base64").toString("utf8");
  const text = nfc ? read.normalize("NFC") : read;
  let want = golden[i].ids;
  if (templateBos) want = want.slice(1);
  const got = Array.from(model.tokenize(text, true));
  compared++;
  if (got.length === want.length && got.every((t, k) => t === want[k])) same++;
  else if (shown.length < 8) shown.push(`  ${JSON.stringify(text.slice(0, 60))}: llama.cpp ${JSON.stringify(got.slice(0, 16))}, tokenizer.json ${JSON.stringify(want.slice(0, 16))}`);
}
const fraction = same / compared;
console.log(`${name}: llama.cpp gives the tokenizer.json's ids for ${same} of ${compared} strings (${(100 * fraction).toFixed(2)} %)${nfc ? ", given the NFC form" : ""}`);
for (const line of shown) console.log(line);
process.exit(fraction >= minAgreement ? 0 : 1);
