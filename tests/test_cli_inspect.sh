#!/usr/bin/env bash
# fipsc inspect beyond the llama2.c model: a plain .safetensors file without configuration is
# listed (tensors, metadata, counts by name), a DeiT directory is summarised, and broken Hugging
# Face checkpoints fail with exit 1 and a message naming the file and what is wrong.
set -uo pipefail
fipsc=$FIPSC_CLI
model=$FIPSC_SOURCE_DIR/models/stories260K.bin
deit=$FIPSC_SHARED_DIR/models/deit-mnist
tmp=$FIPSC_BINARY_DIR/test-tmp/test_cli_inspect
rm -rf "$tmp" && mkdir -p "$tmp"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# a plain .safetensors file (no configuration anywhere): listed with counts by tensor name
mkdir -p "$tmp/plain"
node - "$tmp/plain/weights.safetensors" <<'JS' || fail "could not write the plain safetensors file"
// header: 8-byte little-endian length, JSON, then the data section (tensors back to back)
const tensors = [
  ['encoder.mlp.fc1.weight', 'F32', [4, 8], 4], ['encoder.attn.qkv.weight', 'BF16', [6, 2], 2],
  ['embed.weight', 'F16', [3, 2], 2], ['positions', 'I64', [4], 8]];
const header = {__metadata__: {purpose: 'test', note: 'no config'}};
let offset = 0;
for (const [name, dtype, shape, size] of tensors) {
  const n = shape.reduce((a, b) => a * b, 1) * size;
  header[name] = {dtype, shape, data_offsets: [offset, offset + n]};
  offset += n;
}
const json = Buffer.from(JSON.stringify(header));
const len = Buffer.alloc(8);
len.writeBigUInt64LE(BigInt(json.length));
require('fs').writeFileSync(process.argv[2], Buffer.concat([len, json, Buffer.alloc(offset)]));
JS
"$fipsc" inspect "$tmp/plain/weights.safetensors" >"$tmp/plain.txt" 2>"$tmp/err" || fail "inspect plain exited $?: $(cat "$tmp/err")"
[ -s "$tmp/err" ] && fail "inspect plain wrote to stderr: $(cat "$tmp/err")"
grep -q "^architecture: none (.*no model configuration" "$tmp/plain.txt" || fail "no architecture note: $(head -5 "$tmp/plain.txt")"
grep -q "^parameters: mlp 32, attention 12, embeddings 6, other 4, total 54$" "$tmp/plain.txt" ||
  fail "plain counts: $(grep parameters "$tmp/plain.txt")"
grep -qE "^  encoder.attn.qkv.weight +BF16 +\[6, 2\] +24$" "$tmp/plain.txt" || fail "plain tensor line missing"
grep -qE "^    purpose = test$" "$tmp/plain.txt" || fail "plain metadata missing"
"$fipsc" inspect --json "$tmp/plain/weights.safetensors" >"$tmp/plain.json" || fail "inspect --json plain exited $?"
node - "$tmp/plain.json" <<'JS' || fail "plain JSON checks failed"
const r = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const md = Object.values(r.metadata)[0];
const ok = r.architecture === null && /no model configuration/.test(r.note) && r.format === 'safetensors' &&
  r.params.total === 54 && r.tensors.length === 4 && md.purpose === 'test' &&
  r.tensors.map(t => `${t.name}:${t.dtype}:${t.shape}:${t.bytes}`).join(' ') ===
  'encoder.mlp.fc1.weight:F32:4,8:128 encoder.attn.qkv.weight:BF16:6,2:24 embed.weight:F16:3,2:12 positions:I64:4:32';
if (!ok) { console.error(JSON.stringify(r)); process.exit(1); }
JS

# another architecture (DeiT): summarised with its own fields
"$fipsc" inspect "$deit" >"$tmp/deit.txt" 2>"$tmp/err" || fail "inspect deit exited $?: $(cat "$tmp/err")"
grep -q "^architecture DeiTForImageClassificationWithTeacher: dim 96, hidden 384, 4 layers, 3 heads" "$tmp/deit.txt" ||
  fail "deit architecture: $(head -5 "$tmp/deit.txt")"
# 4 blocks x (384x96 + 96x384) MLP weights
grep -q "^parameters: mlp 294912," "$tmp/deit.txt" || fail "deit mlp count: $(grep parameters "$tmp/deit.txt")"
grep -qE "^  deit.encoder.layer.3.intermediate.dense.weight +F32 +\[384, 96\] +147456$" "$tmp/deit.txt" ||
  fail "deit tensor line missing"

# broken checkpoints made from a converted stories260K
good=$tmp/good
"$fipsc" convert "$model" -o "$good" >/dev/null || fail "convert exited $?"
expect_failure() { # DIR NEEDLE...: inspect DIR exits 1 and stderr names each needle
  local dir=$1
  shift
  "$fipsc" inspect "$dir" >/dev/null 2>"$tmp/err"
  local rc=$?
  [ $rc -eq 1 ] || fail "inspect $dir exited $rc, expected 1"
  for needle in "$@"; do
    grep -qF -- "$needle" "$tmp/err" || fail "inspect $dir: stderr lacks '$needle': $(cat "$tmp/err")"
  done
}
variant() { rm -rf "$tmp/$1" && cp -r "$good" "$tmp/$1" && echo "$tmp/$1"; }

d=$(variant shape)
sed -i 's/"intermediate_size":\t172/"intermediate_size":\t170/' "$d/config.json"
expect_failure "$d" "fipsc inspect: $d/model.safetensors (configuration: $d/config.json): tensor 'model.layers.0.mlp.gate_proj.weight' has shape [172, 64] but the configuration implies [170, 64]"

d=$(variant layers)
sed -i 's/"num_hidden_layers":\t5/"num_hidden_layers":\t6/' "$d/config.json"
expect_failure "$d" "$d/model.safetensors" "missing tensor 'model.layers.5.input_layernorm.weight'"

d=$(variant missing-key)
sed -i '/"vocab_size"/d' "$d/config.json"
expect_failure "$d" "fipsc inspect: $d/config.json: missing required key 'vocab_size'"

d=$(variant bad-json)
printf '{"architectures": ' >"$d/config.json"
expect_failure "$d" "$d/config.json: invalid JSON"

d=$(variant truncated)
head -c 5000 "$good/model.safetensors" >"$d/model.safetensors"
expect_failure "$d" "$d/model.safetensors"

d=$(variant no-weights)
rm "$d/model.safetensors"
expect_failure "$d" "$d"

if [ $failures -ne 0 ]; then echo "test_cli_inspect: $failures failures"; exit 1; fi
echo "test_cli_inspect: ok"
