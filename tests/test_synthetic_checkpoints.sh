#!/usr/bin/env bash
# The synthetic-checkpoint generator (bench/synthetic_llama): one seed gives the same weights as a
# GGUF file and as a Hugging Face directory sharded like the hub's (fipsc evaluates the directory
# against the file with KL exactly 0 in BF16), the index names every tensor once, a single-shard
# directory has model.safetensors, inspect describes it from its headers, and an existing
# directory is refused; the Gemma-2 shapes likewise. A BF16 checkpoint compressed: bytes count against BF16 (2 per dense
# parameter, in the report and in inspect alike), and the compressed file says what it replaced.
set -uo pipefail
fipsc=$FIPSC_CLI
gen=$FIPSC_BINARY_DIR/synthetic_llama
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_synthetic_checkpoints
[ -x "$gen" ] || { echo "$gen is missing (a bench/ program of the build)"; exit 1; }

expect 0 "$gen" "$tmp/t.gguf" --shape tiny --type bf16 --seed 3
expect 0 "$gen" "$tmp/hf" --shape tiny --type bf16 --seed 3 --shard-gb 0.0005
expect_out "wrote $tmp/hf (9 shards)"
[ -f "$tmp/hf/model-00009-of-00009.safetensors" ] || fail "shard 9 of 9 missing: $(ls "$tmp/hf")"
node -e '
  const ix = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const names = Object.keys(ix.weight_map), shards = new Set(Object.values(ix.weight_map));
  // tiny: embeddings, 2 layers of 9 tensors, the final norm (tied head): 20 tensors, BF16
  if (names.length !== 20 || shards.size !== 9 || ix.metadata.total_size !== 2 * 1707264) {
    console.error(JSON.stringify({n: names.length, shards: shards.size, size: ix.metadata.total_size}));
    process.exit(1);
  }' "$tmp/hf/model.safetensors.index.json" || fail "the index is not the 20 tensors in 9 shards"

# same_model DIR FILE.gguf LEN WHAT: on a corpus sampled from FILE, DIR's distributions equal FILE's
# (KL exactly 0, every top-1 token the same)
same_model() {
  expect 0 "$fipsc" sample "$2" --n 2 --len "$3" --seed 1 -o "$tmp/same.tok"
  expect 0 "$fipsc" eval "$1" --ref "$2" --corpus "$tmp/same.tok" --json
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    if (r.kl_max !== 0 || r.top1_agreement !== 1) { console.error(JSON.stringify(r)); process.exit(1); }' "$tmp/out" ||
    fail "$4 of one seed differ: $(head -c 300 "$tmp/out")"
}
same_model "$tmp/hf" "$tmp/t.gguf" 32 "the directory and the GGUF file"

expect 0 "$fipsc" inspect "$tmp/hf"
expect_out "parameters: mlp 1056768, attention 393216, embeddings 256000, other 1280, total 1707264"

# BF16 in, bytes against BF16: block 0 compressed, block 1 kept as BF16
expect 0 "$fipsc" compress "$tmp/hf" -o "$tmp/c.safetensors" --groups 0-0 --steps 5 --calib-samples 4 \
  --calib-len 32 --quiet --report "$tmp/c.json"
expect 0 "$fipsc" inspect --json "$tmp/c.safetensors"
cp "$tmp/out" "$tmp/c.inspect.json"
node -e '
  const fs = require("fs");
  const [r, ins] = process.argv.slice(1).map(f => JSON.parse(fs.readFileSync(f, "utf8")));
  const t = r.totals, g = r.groups[0], fp = ins.compression.footprint, problems = [];
  if (g.dense_bytes !== 2 * g.dense_params) problems.push(`group dense bytes ${g.dense_bytes} for ${g.dense_params} parameters`);
  if (t.mlp_dense_bytes !== 2 * t.mlp_dense_params) problems.push(`total dense bytes ${t.mlp_dense_bytes}`);
  if (fp.dense_bytes !== t.mlp_dense_bytes || fp.stored_bytes !== t.mlp_stored_bytes) problems.push(`inspect ${JSON.stringify(fp)}`);
  // the kept block: 3 matrices of 256 x 688 in BF16, stored as they came
  if (t.mlp_stored_bytes - g.stored_bytes !== 2 * 3 * 256 * 688) problems.push(`kept block ${t.mlp_stored_bytes - g.stored_bytes} bytes`);
  const mats = ins.compression.groups[0].matrices;
  if (mats.length !== 3 || mats.some(m => m.source_dtype !== "BF16")) problems.push(`matrices ${JSON.stringify(mats)}`);
  if (problems.length) { console.error(problems.join("\n")); process.exit(1); }' "$tmp/c.json" "$tmp/c.inspect.json" ||
  fail "bytes are not counted against BF16"

# Gemma-2 at its 2B width (one layer, a small vocabulary): the file and the directory agree, and
# inspect describes it from its headers (Gemma's (1 + w) norms have no values then)
expect 0 "$gen" "$tmp/g2.gguf" --shape gemma2-2b --layers 1 --vocab 1000 --type bf16
expect 0 "$gen" "$tmp/g2" --shape gemma2-2b --layers 1 --vocab 1000 --type bf16
for m in "$tmp/g2" "$tmp/g2.gguf"; do
  expect 0 "$fipsc" inspect "$m"
  expect_out "architecture Gemma2ForCausalLM: dim 2304, hidden 9216, 1 layers, 8 heads, 4 kv heads, vocab 1000"
  expect_out "post norms, soft-caps 50/30, window 4096 on even layers"
done
same_model "$tmp/g2" "$tmp/g2.gguf" 16 "the Gemma-2 directory and GGUF file"

expect 0 "$gen" "$tmp/one" --shape tiny --layers 1 --type f32
[ -f "$tmp/one/model.safetensors" ] && [ ! -f "$tmp/one/model.safetensors.index.json" ] ||
  fail "a single-shard directory should hold model.safetensors only: $(ls "$tmp/one")"
expect 0 "$fipsc" inspect "$tmp/one"
expect_out "1 layers"

expect 1 "$gen" "$tmp/one" --shape tiny
expect_err "cannot create $tmp/one"
expect 1 "$gen" "$tmp/q" --shape tiny --type q8_0
expect_err "a Hugging Face directory holds f32, f16 or bf16 tensors"
test_end
