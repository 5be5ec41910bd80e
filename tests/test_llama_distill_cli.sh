#!/usr/bin/env bash
# `fipsc distill` end to end on a language model: stories260K compressed by fips-init and distilled
# on a small sampled corpus gets closer to the original (the printed KL, and `fipsc eval --ref` on
# the same corpus), keeps its sparsity, carries the compress metadata and adds its own, is the same
# file for thread counts 1 and 2; and bad input is refused with a clear message and no output.
set -euo pipefail
: "${FIPSC_CLI:?run through ctest}" "${FIPSC_SOURCE_DIR:?}" "${FIPSC_BINARY_DIR:?}"
fipsc=$FIPSC_CLI
llama="$FIPSC_SOURCE_DIR/models/stories260K.bin"
sts="$FIPSC_SOURCE_DIR/tests/data/sts-small.tsv"
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_llama_distill_cli

expect 0 "$fipsc" sample "$llama" --n 12 --len 48 --seed 3 -o "$tmp/cal.tok"
expect 0 "$fipsc" compress "$llama" -o "$tmp/init.safetensors" --method fips-init --budget 0.5 \
  --calib-corpus "$tmp/cal.tok" --quiet
# kl FILE: fipsc eval --ref's mean KL of FILE against the original on the corpus
kl() { "$fipsc" eval "$1" --corpus "$tmp/cal.tok" --ref "$llama" --json | sed -n 's/.*"kl_mean":[[:space:]]*\([0-9.e+-]*\).*/\1/p'; }

common=(--original "$llama" --corpus "$tmp/cal.tok" --steps 20 --batch 4 --lr 2e-3)
expect 0 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" -o "$tmp/d1.safetensors"
expect_out "mean KL(original || compressed) over 12 sequences (564 positions)"
expect_out "20 steps of 4 sequences"
before=$(sed -n 's/.*positions): \([0-9.]*\) -> \([0-9.]*\)/\1/p' "$tmp/out")
after=$(sed -n 's/.*positions): \([0-9.]*\) -> \([0-9.]*\)/\2/p' "$tmp/out")
awk -v b="$before" -v a="$after" 'BEGIN { exit !(a < 0.9 * b) }' || fail "printed KL $before -> $after"
# the runtime agrees: eval --ref measures the same KL on the same corpus
ki=$(kl "$tmp/init.safetensors")
kd=$(kl "$tmp/d1.safetensors")
awk -v p="$before" -v m="$ki" 'BEGIN { d = p - m; exit !(d < 1e-4 * m + 1e-6 && d > -1e-4 * m - 1e-6) }' || fail "before: printed $before, eval $ki"
awk -v p="$after" -v m="$kd" 'BEGIN { d = p - m; exit !(d < 1e-4 * m + 1e-6 && d > -1e-4 * m - 1e-6) }' || fail "after: printed $after, eval $kd"

# the same sparsity; the compress metadata carried over, the distill metadata added
expect_same_sparsity "$tmp/init.safetensors" "$tmp/d1.safetensors"
expect_out "fipsc.compress = {\"options\":{\"method\":\"fips-init\""
expect_out "fipsc.distill = {\"sequences\":12,\"positions\":564,"

# deterministic whatever the thread count
expect 0 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" -o "$tmp/d2.safetensors" --threads 1 --quiet
cmp -s "$tmp/d1.safetensors" "$tmp/d2.safetensors" || fail "--threads 1 gave a different file"
[ ! -s "$tmp/out" ] || fail "--quiet printed: $(head -c 200 "$tmp/out")"

# refused, with no output left behind (exit 2: the arguments are wrong; 1: the input is)
no_output() { [ ! -e "$tmp/bad.safetensors" ] || { fail "output left behind: $*"; rm -f "$tmp/bad.safetensors"; }; }
expect 2 "$fipsc" distill "$tmp/init.safetensors" --original "$llama" --sentences "$sts" -o "$tmp/bad.safetensors"
expect_err "is a language model: give its calibration data with --corpus FILE"
no_output "sentences for a language model"
expect 2 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" --relational 1 -o "$tmp/bad.safetensors"
expect_err "sentence encoder's terms"
no_output "relational term"
expect 2 "$fipsc" distill "$tmp/init.safetensors" --original "$tmp/init.safetensors" --corpus "$tmp/cal.tok" -o "$tmp/bad.safetensors"
expect_err "give the uncompressed model"
no_output "compressed original"
expect 1 "$fipsc" distill "$tmp/init.safetensors" --original "$llama" --corpus "$tmp/none.tok" -o "$tmp/bad.safetensors"
expect_err "none.tok"
no_output "missing corpus"
printf '1 600\n' >"$tmp/big.txt"
expect 2 "$fipsc" distill "$tmp/init.safetensors" --original "$llama" --corpus "$tmp/big.txt" -o "$tmp/bad.safetensors"
expect_err "vocabulary"
no_output "token outside the vocabulary"
printf '1\n2\n' >"$tmp/short.txt"
expect 2 "$fipsc" distill "$tmp/init.safetensors" --original "$llama" --corpus "$tmp/short.txt" -o "$tmp/bad.safetensors"
expect_err "two tokens or more"
no_output "single-token sequences"
expect 2 "$fipsc" distill "$tmp/init.safetensors" --original "$llama" -o "$tmp/bad.safetensors"
expect_err "missing --sentences FILE"
expect 2 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" --sentences "$sts" -o "$tmp/bad.safetensors"
expect_err "not several"
no_output "usage errors"

test_end
