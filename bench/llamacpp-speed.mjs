// llama.cpp's prefill and decode speed through node-llama-cpp (installed by scripts/fetch-models
// into tests/llamacpp/node_modules), in bench_lm_speed's protocol: a fresh context sequence is
// prefilled with N token ids (the same ids), then M tokens are decoded greedily one at a time;
// each phase timed R times, the best reported as tokens per second. Loading is not timed.
//
//   node bench/llamacpp-speed.mjs MODEL.gguf [N] [M] [THREADS] [REPS]
const mod = new URL("../tests/llamacpp/node_modules/node-llama-cpp/dist/index.js", import.meta.url);
const { getLlama } = await import(mod.href);
const [modelPath, nArg, mArg, tArg, rArg] = process.argv.slice(2);
const N = Number(nArg ?? 128), M = Number(mArg ?? 16), threads = Number(tArg ?? 1), reps = Number(rArg ?? 2);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath, useMmap: true });
const vocab = model.fileInfo.metadata.tokenizer.ggml.tokens.length;
const tokens = Array.from({ length: N }, (_, i) => (i * 7919 + 13) % vocab);
let bestPrefill = Infinity, bestDecode = Infinity;
for (let r = 0; r < reps; r++) {
  const context = await model.createContext({ contextSize: N + M + 8, batchSize: N, threads, flashAttention: false });
  const seq = context.getSequence();
  const t0 = performance.now();
  const input = [...tokens.slice(0, -1), [tokens[N - 1], { generateNext: { token: true, options: { temperature: 0 } } }]];
  const out = await seq.controlledEvaluate(input);
  const t1 = performance.now();
  let next = out[N - 1].next.token;
  for (let i = 0; i < M; i++) {
    const [res] = await seq.controlledEvaluate([[next, { generateNext: { token: true, options: { temperature: 0 } } }]]);
    next = res.next.token;
  }
  const t2 = performance.now();
  bestPrefill = Math.min(bestPrefill, (t1 - t0) / 1000);
  bestDecode = Math.min(bestDecode, (t2 - t1) / 1000);
  await context.dispose();
}
console.log(`llama.cpp: prefill ${N} tokens ${(N / bestPrefill).toFixed(2)} tok/s, decode ${M} tokens ${(M / bestDecode).toFixed(3)} tok/s (${threads} threads, best of ${reps})`);
await model.dispose();
await llama.dispose();
