#!/usr/bin/env bash
# fipsc convert + inspect through the command line: stories260K.bin -> Hugging Face directory,
# same architecture and parameter counts before and after, the written config.json, --json
# output (parsed with node), refusal to overwrite, --force.
set -euo pipefail
fipsc=$FIPSC_CLI
model=$FIPSC_SOURCE_DIR/models/stories260K.bin
tmp=$FIPSC_BINARY_DIR/test-tmp/test_cli_convert
rm -rf "$tmp" && mkdir -p "$tmp"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
expect_in() { grep -qF -- "$2" "$1" || fail "$1 does not contain '$2': $(head -c 600 "$1")"; }

summary="dim 64, hidden 172, 5 layers, 8 heads, 4 kv heads, vocab 512"

# the original
"$fipsc" inspect "$model" >"$tmp/bin.txt" || fail "inspect $model exited $?"
expect_in "$tmp/bin.txt" "$summary"
expect_in "$tmp/bin.txt" "mlp 165120,"

# convert, then the directory reports the same
out=$tmp/stories260K-hf
"$fipsc" convert "$model" -o "$out" >"$tmp/convert.txt" || fail "convert exited $?"
expect_in "$tmp/convert.txt" "wrote $out"
[ "$(ls "$out" | tr '\n' ' ')" = "config.json model.safetensors " ] || fail "unexpected files in $out: $(ls -a "$out")"
ls -d "$tmp"/*.tmp-* >/dev/null 2>&1 && fail "temporary directory left behind"
"$fipsc" inspect "$out" >"$tmp/dir.txt" || fail "inspect $out exited $?"
expect_in "$tmp/dir.txt" "architecture LlamaForCausalLM: $summary"
expect_in "$tmp/dir.txt" "mlp 165120,"
expect_in "$tmp/dir.txt" "model.layers.4.mlp.down_proj.weight"
expect_in "$tmp/dir.txt" "format = pt"
"$fipsc" inspect "$out/model.safetensors" >"$tmp/file.txt" || fail "inspect model.safetensors exited $?"
expect_in "$tmp/file.txt" "$summary"
# identical parameter lines before and after
[ "$(grep '^parameters:' "$tmp/bin.txt")" = "$(grep '^parameters:' "$tmp/dir.txt")" ] ||
  fail "parameter counts differ: $(grep '^parameters:' "$tmp/bin.txt") vs $(grep '^parameters:' "$tmp/dir.txt")"

# --json: same content, machine-readable
"$fipsc" inspect --json "$model" >"$tmp/bin.json" || fail "inspect --json exited $?"
"$fipsc" inspect "$out" --json >"$tmp/dir.json" || fail "inspect --json exited $?"
node - "$tmp/bin.json" "$tmp/dir.json" "$out/config.json" <<'JS' || fail "JSON checks failed"
const fs = require('fs');
const [bin, dir, cfg] = process.argv.slice(2).map(f => JSON.parse(fs.readFileSync(f, 'utf8')));
const problems = [];
const expect = (cond, what) => { if (!cond) problems.push(what); };
for (const [name, r] of [['bin', bin], ['dir', dir]]) {
  const a = r.architecture;
  expect(a && a.dim === 64 && a.hidden_dim === 172 && a.n_layers === 5 && a.n_heads === 8 &&
         a.n_kv_heads === 4 && a.vocab_size === 512, `${name}: architecture ${JSON.stringify(a)}`);
  expect(r.params.mlp === 165120, `${name}: mlp params ${r.params.mlp}`);
  expect(r.tensors.length === 47, `${name}: ${r.tensors.length} tensors`);
}
expect(bin.format === 'llama2.c' && dir.format === 'huggingface-directory', 'formats');
expect(JSON.stringify(bin.params) === JSON.stringify(dir.params), 'params differ');
expect(JSON.stringify(bin.tensors) === JSON.stringify(dir.tensors), 'tensor lists differ');
const up = dir.tensors.find(t => t.name === 'model.layers.0.mlp.up_proj.weight');
expect(up && up.dtype === 'F32' && up.shape.join() === '172,64' && up.bytes === 172 * 64 * 4, 'up_proj entry');
const md = Object.values(dir.metadata)[0];
expect(md && md.format === 'pt' && JSON.parse(md.config).hidden_size === 64, 'metadata');
// the written config.json is a standard transformers Llama config
expect(cfg.architectures[0] === 'LlamaForCausalLM' && cfg.model_type === 'llama', 'architectures');
expect(cfg.hidden_act === 'silu' && cfg.torch_dtype === 'float32', 'hidden_act/torch_dtype');
expect(cfg.hidden_size === 64 && cfg.intermediate_size === 172 && cfg.num_hidden_layers === 5 &&
       cfg.num_attention_heads === 8 && cfg.num_key_value_heads === 4 && cfg.vocab_size === 512, 'sizes');
expect(cfg.rms_norm_eps === 1e-5 && cfg.rope_theta === 10000 && cfg.tie_word_embeddings === true, 'eps/theta/tie');
expect(cfg.max_position_embeddings === 512 && cfg.bos_token_id === 1 && cfg.eos_token_id === 2, 'positions/tokens');
if (problems.length) { console.error(problems.join('\n')); process.exit(1); }
JS

# an existing non-empty directory is refused (exit 1, path named), --force replaces the files
set +e
"$fipsc" convert "$model" -o "$out" 2>"$tmp/err.txt"; rc=$?
set -e
[ $rc -eq 1 ] || fail "convert onto a non-empty directory exited $rc, expected 1"
expect_in "$tmp/err.txt" "fipsc convert: $out: exists and is not empty"
expect_in "$tmp/err.txt" "--force"
"$fipsc" convert "$model" -o "$out" --force >/dev/null || fail "convert --force exited $?"
cmp -s "$out/model.safetensors" <("$fipsc" convert "$model" -o "$tmp/again" >/dev/null && cat "$tmp/again/model.safetensors") ||
  fail "two conversions differ"

# a directory converts again (HF -> HF) to the same bytes
"$fipsc" convert "$out" -o "$tmp/hf-to-hf" >/dev/null || fail "convert of a directory exited $?"
cmp -s "$out/model.safetensors" "$tmp/hf-to-hf/model.safetensors" || fail "HF -> HF changed model.safetensors"
cmp -s "$out/config.json" "$tmp/hf-to-hf/config.json" || fail "HF -> HF changed config.json"

if [ $failures -ne 0 ]; then echo "test_cli_convert: $failures failures"; exit 1; fi
echo "test_cli_convert: ok"
