#!/usr/bin/env bash
# `fipsc compress` on the sentence encoder end to end: calibration sentences chosen by the model's
# architecture (and refused for the wrong kind of model or source), the compressed file run by
# embed and eval-sts, eval-sts --ref against the original, and the usage errors.
set -euo pipefail
: "${FIPSC_CLI:?run through ctest}" "${FIPSC_SOURCE_DIR:?}" "${FIPSC_BINARY_DIR:?}"
fipsc=$FIPSC_CLI
sts="$FIPSC_SOURCE_DIR/tests/data/sts-small.tsv"
llama="$FIPSC_SOURCE_DIR/models/stories260K.bin"
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_use_compress_cli
model=$(use_model_dir)

expect 0 "$fipsc" import-tfjs "$model" -o "$tmp/use.safetensors"

# magnitude at half the MLP parameters (no training: fast), calibrated on sentences
expect 0 "$fipsc" compress "$tmp/use.safetensors" -o "$tmp/mag.safetensors" --method magnitude --budget 0.5 \
  --calib-sentences "$sts" --calib-rows 0 --report "$tmp/mag.json"
expect_out "method magnitude, budget 0.5, groups 0-1"
grep -q '"calibration"' "$tmp/mag.json" || fail "no calibration in the report"
grep -q 'sentences sts-small.tsv: all 48 sentences' "$tmp/mag.json" || fail "calibration source: $(grep -o '"source[^,]*' "$tmp/mag.json")"
expect 0 "$fipsc" inspect "$tmp/mag.safetensors"
expect_out "method magnitude"
expect_out "encoder.layer.1.mlp.fc2.weight"

# the compressed file runs through embed and eval-sts as it is
expect 0 "$fipsc" embed "$tmp/mag.safetensors" --text "A man is playing a guitar."
[ "$(wc -w <"$tmp/out")" -eq 512 ] || fail "embed printed $(wc -w <"$tmp/out") numbers"
expect 0 "$fipsc" eval-sts "$tmp/mag.safetensors" "$sts" --ref "$tmp/use.safetensors" --json
grep -Eq '^\{"pairs": 24, "spearman": 0\.[0-9]+, "pearson": 0\.[0-9]+, "reference": ".*use.safetensors", "sentences": 48, "mean_cosine": 0\.[0-9]+, "min_cosine": 0\.[0-9]+, "mlp_rel_err": \[0\.[0-9]+, 0\.[0-9]+\]\}$' "$tmp/out" ||
  fail "eval-sts --ref --json: $(cat "$tmp/out")"
expect 0 "$fipsc" eval-sts "$tmp/use.safetensors" "$sts" --ref "$tmp/use.safetensors"
expect_out "cosine mean 1.000000"
expect 2 "$fipsc" eval-sts "$tmp/mag.safetensors" "$sts" --ref
expect 1 "$fipsc" eval-sts "$tmp/mag.safetensors" "$sts" --ref "$llama"
expect_err "sentence encoder"

# fips with a few steps, from a text file of sentences under a row budget; the same seed gives
# the same file (the second run with its calibration rows in a scratch file)
cut -f6 "$sts" >"$tmp/sentences.txt"
for out in fips1 fips2; do
  spill=(); [ $out = fips2 ] && spill=(--spill always --scratch-dir "$tmp")
  expect 0 "$fipsc" compress "$tmp/use.safetensors" -o "$tmp/$out.safetensors" --budget 0.25 --steps 4 --batch 64 \
    --calib-sentences "$tmp/sentences.txt" --calib-rows 200 --seed 3 --quiet "${spill[@]}"
done
cmp -s "$tmp/fips1.safetensors" "$tmp/fips2.safetensors" || fail "the same seed gave different files"
expect 0 "$fipsc" eval-sts "$tmp/fips1.safetensors" "$sts"
expect_out "24 pairs"

# several files with weights: the row budget shared 1:3, each file's draw in the report; a weight
# needs a budget to share; a file whose share holds no sentence is named
head -n 12 "$tmp/sentences.txt" >"$tmp/a.txt"
tail -n +13 "$tmp/sentences.txt" >"$tmp/b.txt"
expect 0 "$fipsc" compress "$tmp/use.safetensors" -o "$tmp/two.safetensors" --method magnitude --budget 0.5 \
  --calib-sentences "$tmp/a.txt:1,$tmp/b.txt:3" --calib-rows 200 --report "$tmp/two.json"
expect_out "sentences a.txt (weight 1): [0-9]* of 12 sentences ([0-9]* token rows, at most 50 drawn"
expect_out "; sentences b.txt (weight 3): [0-9]* of 12 sentences ([0-9]* token rows, at most 150 drawn"
grep -q 'sentences b.txt (weight 3)' "$tmp/two.json" || fail "the report does not name the second file"
expect 2 "$fipsc" compress "$tmp/use.safetensors" -o "$tmp/x.safetensors" --method magnitude \
  --calib-sentences "$tmp/a.txt:1,$tmp/b.txt:3" --calib-rows 0
expect_err "weights share the --calib-rows budget"
expect 2 "$fipsc" compress "$tmp/use.safetensors" -o "$tmp/x.safetensors" --method magnitude \
  --calib-sentences "$tmp/a.txt:1,$tmp/b.txt:1000" --calib-rows 200
expect_err "a.txt: its weight gives it none of the 200 rows"
expect 2 "$fipsc" compress "$tmp/use.safetensors" -o "$tmp/x.safetensors" --method magnitude \
  --calib-sentences "$tmp/a.txt:1,$tmp/b.txt:50" --calib-rows 200
expect_err "no sentence of a.txt fits in its share of 4 rows"

# the calibration source follows the architecture
expect 2 "$fipsc" compress "$tmp/use.safetensors" -o "$tmp/x.safetensors" --method magnitude
expect_err "give --calib-sentences"
expect 2 "$fipsc" compress "$tmp/use.safetensors" -o "$tmp/x.safetensors" --method magnitude \
  --calib-sentences "$sts" --calib-corpus "$tmp/none.tok"
expect_err "a sentence encoder calibrates on --calib-sentences"
expect 2 "$fipsc" compress "$tmp/use.safetensors" -o "$tmp/x.safetensors" --method magnitude \
  --calib-sentences "$sts" --calib-samples 4
expect_err "a sentence encoder calibrates on --calib-sentences"
expect 2 "$fipsc" compress "$llama" -o "$tmp/x.safetensors" --method magnitude --calib-sentences "$sts"
expect_err "apply to sentence encoders only"
expect 2 "$fipsc" compress "$llama" -o "$tmp/x.safetensors" --method magnitude --calib-rows 100
expect_err "apply to sentence encoders only"
expect 2 "$fipsc" compress "$tmp/use.safetensors" -o "$tmp/x.safetensors" --calib-sentences "$sts" --calib-rows -5
expect 1 "$fipsc" compress "$tmp/use.safetensors" -o "$tmp/x.safetensors" --method magnitude \
  --calib-sentences "$tmp/missing.tsv"
expect_err "missing.tsv"
expect 2 "$fipsc" compress "$tmp/use.safetensors" -o "$tmp/x.safetensors" --method magnitude \
  --calib-sentences "$sts" --calib-rows 3
expect_err "no sentence fits in 3 calibration rows"
[ -e "$tmp/x.safetensors" ] && fail "a failed run left its output behind"
expect 0 "$fipsc" compress --help
expect_out "--calib-sentences"

test_end
