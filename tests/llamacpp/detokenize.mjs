// llama.cpp's text for token ids, with the vocabulary of a GGUF file (node-llama-cpp's
// model.detokenize): shows which tokenizer llama.cpp took from the file.
//
//   node detokenize.mjs MODEL.gguf ID...
const { getLlama } = await import(new URL("./node_modules/node-llama-cpp/dist/index.js", import.meta.url).href);
const [modelPath, ...ids] = process.argv.slice(2);
const llama = await getLlama({ gpu: false, build: "never", logLevel: "error" });
const model = await llama.loadModel({ modelPath, useMmap: true });
console.log(JSON.stringify(model.detokenize(ids.map(Number), true)));
await model.dispose();
await llama.dispose();
