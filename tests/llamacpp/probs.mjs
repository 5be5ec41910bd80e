// llama.cpp's next-token probabilities at every position of a token sequence, through the npm
// package node-llama-cpp (its prebuilt CPU build of llama.cpp): the independent reference that
// tests/llamacpp_agree compares fipsc with.
//
//   node probs.mjs MODEL.gguf CORPUS OUT.f32 [THREADS]
//
// CORPUS is a fipsc token corpus (docs/FORMAT.md, "Token corpus"): the binary form `fipsc sample`
// writes, or text with one sequence of ids per line (what `fipsc generate` prints). OUT.f32
// receives float32 little-endian [total tokens, n_vocab], the sequences one after another: row i
// of a sequence is llama.cpp's distribution of the token after its tokens 0..i. Every sequence
// starts from an empty context.
// The context uses an F32 KV cache and no flash attention, so that llama.cpp rounds as little
// as it can; sampling options are neutral (temperature 1, no top-k/top-p/min-p cut), so the
// probabilities are the softmax of the logits.
import { readFileSync, writeFileSync } from "node:fs";
import { getLlama } from "node-llama-cpp";

const [modelPath, corpusPath, outPath, threadsArg] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node probs.mjs MODEL.gguf CORPUS OUT.f32 [THREADS]");
  process.exit(2);
}
function readCorpus(path) {
  const bytes = readFileSync(path);
  if (bytes.length >= 24 && bytes.toString("latin1", 0, 8) === "FIPSCTOK") {
    const count = bytes.readUInt32LE(12), length = bytes.readUInt32LE(16);
    const seqs = [];
    for (let s = 0; s < count; s++)
      seqs.push(Array.from({ length }, (_, i) => bytes.readUInt32LE(24 + 4 * (s * length + i))));
    return seqs;
  }
  return bytes.toString("utf8").split("\n").map((l) => l.trim()).filter((l) => l.length > 0)
    .map((l) => l.split(/[ \t]+/).map(Number));
}
const sequences = readCorpus(corpusPath);
if (sequences.length === 0 || !sequences.every((q) => q.length > 0 && q.every(Number.isInteger))) {
  console.error(`${corpusPath}: expected sequences of token ids`);
  process.exit(2);
}
const longest = Math.max(...sequences.map((q) => q.length));
const threads = Number(threadsArg ?? 1);

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath, useMmap: true });
const context = await model.createContext({
  contextSize: Math.max(longest + 1, 32),
  batchSize: Math.max(longest, 32),
  threads,
  flashAttention: false,
  experimentalKvCacheKeyType: "F32",
  experimentalKvCacheValueType: "F32",
});
const sequence = context.getSequence();
const opts = { temperature: 1, topK: 0, topP: 1, minP: 0 };
const vocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
const total = sequences.reduce((n, q) => n + q.length, 0);
const out = new Float32Array(total * vocab);
let row = 0;
for (const tokens of sequences) {
  await sequence.clearHistory();
  const input = tokens.map((t) => [t, { generateNext: { probabilities: true, options: opts } }]);
  const results = await sequence.controlledEvaluate(input);
  results.forEach((r, i) => {
    const p = r?.next?.probabilities;
    if (!p) throw new Error(`no probabilities at position ${i}`);
    for (const [tok, prob] of p) out[(row + i) * vocab + tok] = prob;
  });
  row += tokens.length;
}
writeFileSync(outPath, Buffer.from(out.buffer));
console.log(`${sequences.length} sequence(s), ${total} positions, vocabulary ${vocab}`);
await context.dispose();
await model.dispose();
await llama.dispose();
