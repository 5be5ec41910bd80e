// llama.cpp's next-token probabilities at every position of a token sequence, through the npm
// package node-llama-cpp (its prebuilt CPU build of llama.cpp): the independent reference that
// tests/llamacpp_agree compares fipsc with.
//
//   node probs.mjs MODEL.gguf TOKENS.json OUT.f32 [THREADS]
//
// TOKENS.json is a JSON array of token ids. OUT.f32 receives float32 little-endian
// [n_tokens, n_vocab]: row i is llama.cpp's distribution of the token after tokens[0..i].
// The context uses an F32 KV cache and no flash attention, so that llama.cpp rounds as little
// as it can; sampling options are neutral (temperature 1, no top-k/top-p/min-p cut), so the
// probabilities are the softmax of the logits.
import { readFileSync, writeFileSync } from "node:fs";
import { getLlama } from "node-llama-cpp";

const [modelPath, tokensPath, outPath, threadsArg] = process.argv.slice(2);
if (!outPath) {
  console.error("usage: node probs.mjs MODEL.gguf TOKENS.json OUT.f32 [THREADS]");
  process.exit(2);
}
const tokens = JSON.parse(readFileSync(tokensPath, "utf8"));
if (!Array.isArray(tokens) || tokens.length === 0 || !tokens.every(Number.isInteger)) {
  console.error(`${tokensPath}: expected a non-empty JSON array of token ids`);
  process.exit(2);
}
const threads = Number(threadsArg ?? 1);

const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath, useMmap: true });
const context = await model.createContext({
  contextSize: Math.max(tokens.length + 1, 32),
  batchSize: Math.max(tokens.length, 32),
  threads,
  flashAttention: false,
  experimentalKvCacheKeyType: "F32",
  experimentalKvCacheValueType: "F32",
});
const sequence = context.getSequence();
const opts = { temperature: 1, topK: 0, topP: 1, minP: 0 };
const input = tokens.map((t) => [t, { generateNext: { probabilities: true, options: opts } }]);
const results = await sequence.controlledEvaluate(input);

const vocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
const out = new Float32Array(tokens.length * vocab);
results.forEach((r, i) => {
  const p = r?.next?.probabilities;
  if (!p) throw new Error(`no probabilities at position ${i}`);
  for (const [tok, prob] of p) out[i * vocab + tok] = prob;
});
writeFileSync(outPath, Buffer.from(out.buffer));
console.log(`${tokens.length} positions, vocabulary ${vocab}`);
await context.dispose();
await model.dispose();
await llama.dispose();
