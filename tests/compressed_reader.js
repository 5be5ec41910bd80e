#!/usr/bin/env node
// An independent reader of the fipsc compressed format, written from docs/FORMAT.md alone (no
// fipsc code): it parses the safetensors container itself, rebuilds every compressed MLP weight
// as U·V_i (or V_i for an identity basis) in [out, in] orientation, and compares it with the
// same tensor of a dense checkpoint (e.g. the model.safetensors of `fipsc export --dense`).
// Every other tensor must be byte-identical in both files.
//
//   node compressed_reader.js COMPRESSED.safetensors DENSE.safetensors
// Prints one line per checked weight and exits 1 on any mismatch (relative error > 1e-5).
'use strict';
const fs = require('fs');

function readSafetensors(path) {
  const buf = fs.readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const data = buf.subarray(8 + n);
  const meta = header.__metadata__ || {};
  delete header.__metadata__;
  return { meta, tensors: header, data };
}

const ITEM = { F32: 4, F16: 2, BF16: 2, U8: 1, U16: 2, U32: 4 };

function f16(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

// The tensor as an array of numbers (little-endian, any alignment).
function values(file, name, dtype) {
  const t = file.tensors[name];
  if (!t) throw new Error(`missing tensor ${name}`);
  if (dtype && t.dtype !== dtype) throw new Error(`${name}: dtype ${t.dtype}, expected ${dtype}`);
  const [b, e] = t.data_offsets, bytes = file.data.subarray(b, e), size = ITEM[t.dtype];
  const out = new Array(bytes.length / size);
  for (let i = 0; i < out.length; i++) {
    const o = i * size;
    switch (t.dtype) {
      case 'F32': out[i] = bytes.readFloatLE(o); break;
      case 'F16': out[i] = f16(bytes.readUInt16LE(o)); break;
      case 'BF16': { const w = Buffer.alloc(4); w.writeUInt16LE(bytes.readUInt16LE(o), 2); out[i] = w.readFloatLE(0); break; }
      case 'U8': out[i] = bytes[o]; break;
      case 'U16': out[i] = bytes.readUInt16LE(o); break;
      case 'U32': out[i] = bytes.readUInt32LE(o); break;
      default: throw new Error(`${name}: unexpected dtype ${t.dtype}`);
    }
  }
  return { shape: t.shape, v: out };
}

function base(weight) { return weight.endsWith('.weight') ? weight.slice(0, -'.weight'.length) : weight; }

const [compressedPath, densePath] = process.argv.slice(2);
const c = readSafetensors(compressedPath), d = readSafetensors(densePath);
let failures = 0;
const fail = (msg) => { console.log('FAIL ' + msg); failures++; };

const version = c.meta.fipsc_format_version;
if (c.meta.fipsc_format !== 'compressed' || (version !== '1' && version !== '2')) fail('metadata marker/version');
const layout = JSON.parse(c.meta.fipsc_compression);
const config = JSON.parse(c.meta.config);
const named = new Set();
layout.groups.forEach((g, gi) => {
  const r = g.rank, dm = g.d;
  let U = null;
  if (g.basis === 'dense') {
    const name = `fips.groups.${gi}.U`;
    named.add(name);
    U = values(c, name, g.u_dtype);
    if (U.shape.join() !== `${dm},${r}`) fail(`${name} shape ${U.shape}`);
  } else if (g.basis !== 'identity' || r !== dm) fail(`group ${gi} basis ${g.basis}`);
  const vt = g.v_dtype || 'F32'; // version 2: the values' dtype
  if (version === '1' && (vt !== 'F32' || g.storage === 'bitmap')) fail(`group ${gi}: version 2 features in a version 1 file`);
  for (const m of g.matrices) {
    const f = m.f, b = base(m.weight), V = new Float64Array(r * f);
    if (g.storage === 'csc') {
      for (const s of ['values', 'row_indices', 'col_ptr']) named.add(`${b}.fips_v.${s}`);
      const val = values(c, `${b}.fips_v.values`, vt).v;
      const row = values(c, `${b}.fips_v.row_indices`, r <= 65535 ? 'U16' : 'U32').v;
      const ptr = values(c, `${b}.fips_v.col_ptr`, 'U32').v;
      if (val.length !== m.nnz || ptr.length !== f + 1 || ptr[f] !== m.nnz) fail(`${b}: csc sizes`);
      for (let j = 0; j < f; j++) for (let p = ptr[j]; p < ptr[j + 1]; p++) V[row[p] * f + j] = val[p];
    } else if (g.storage === 'nm') {
      const [n, mm] = g.nm, runs = r / mm;
      named.add(`${b}.fips_v.nm_values`); named.add(`${b}.fips_v.nm_indices`);
      const val = values(c, `${b}.fips_v.nm_values`, vt), off = values(c, `${b}.fips_v.nm_indices`, 'U8').v;
      if (val.shape.join() !== `${f},${runs},${n}` || m.nnz !== f * runs * n) fail(`${b}: nm shape`);
      for (let j = 0; j < f; j++)
        for (let q = 0; q < runs; q++)
          for (let s = 0; s < n; s++) {
            const slot = (j * runs + q) * n + s;
            V[(q * mm + off[slot]) * f + j] = val.v[slot];
          }
    } else if (g.storage === 'dense') {
      named.add(`${b}.fips_v.dense`);
      const val = values(c, `${b}.fips_v.dense`, vt).v;
      for (let i = 0; i < r * f; i++) V[i] = val[i];
    } else if (g.storage === 'bitmap') {
      // per column ceil(r/8) bytes, bit k%8 (least significant first) of byte k/8 = row k kept;
      // the values column by column, rows increasing
      named.add(`${b}.fips_v.values`); named.add(`${b}.fips_v.bitmap`);
      const val = values(c, `${b}.fips_v.values`, vt).v, bits = values(c, `${b}.fips_v.bitmap`, 'U8');
      const stride = Math.ceil(r / 8);
      if (bits.shape.join() !== `${f},${stride}` || val.length !== m.nnz) fail(`${b}: bitmap sizes`);
      let p = 0;
      for (let j = 0; j < f; j++)
        for (let k = 0; k < stride * 8; k++)
          if (bits.v[j * stride + (k >> 3)] & (1 << (k & 7))) {
            if (k >= r) fail(`${b}: bitmap marks row ${k} >= rank ${r}`);
            else V[k * f + j] = val[p];
            p++;
          }
      if (p !== m.nnz) fail(`${b}: bitmap marks ${p} entries, nnz ${m.nnz}`);
    } else fail(`${b}: storage ${g.storage}`);
    // M = U·V [d, f]; the weight is Mᵀ [f, d] when expanding, M [d, f] when contracting
    const M = new Float64Array(dm * f);
    for (let i = 0; i < dm; i++)
      for (let k = 0; k < r; k++) {
        const u = U ? U.v[i * r + k] : (i === k ? 1 : 0);
        if (u === 0) continue;
        for (let j = 0; j < f; j++) M[i * f + j] += u * V[k * f + j];
      }
    const W = values(d, m.weight, 'F32');
    const [out, inn] = m.weight_shape, expanding = m.orientation === 'expanding';
    if (W.shape.join() !== `${out},${inn}`) fail(`${m.weight}: dense shape ${W.shape}`);
    let diff = 0, scale = 0;
    for (let o = 0; o < out; o++)
      for (let i = 0; i < inn; i++) {
        const want = expanding ? M[i * f + o] : M[o * f + i];
        diff = Math.max(diff, Math.abs(W.v[o * inn + i] - want));
        scale = Math.max(scale, Math.abs(want));
      }
    const rel = diff / scale;
    console.log(`${m.weight} (${m.role}, ${m.orientation}, ${g.storage}, nnz ${m.nnz}): relative error ${rel.toExponential(2)}`);
    if (!(rel <= 1e-5)) fail(`${m.weight}: relative error ${rel}`);
  }
});
// every other tensor unchanged
for (const [name, t] of Object.entries(c.tensors)) {
  if (named.has(name)) continue;
  const u = d.tensors[name];
  const a = c.data.subarray(...t.data_offsets), b = u && d.data.subarray(...u.data_offsets);
  if (!u || t.dtype !== u.dtype || !a.equals(b)) fail(`${name} differs between the files`);
}
console.log(`${config.architectures[0]}: ${layout.groups.length} groups checked, ${failures} failures`);
process.exit(failures ? 1 : 0);
