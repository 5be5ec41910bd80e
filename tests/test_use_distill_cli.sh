#!/usr/bin/env bash
# `fipsc distill` end to end on the sentence encoder: a fips-init file distilled on a few STS
# sentences gets closer to the original (the printed cosines, and eval-sts --ref on the same
# sentences), keeps its sparsity, carries the compress metadata and adds its own, is
# the same file for the same seed and thread counts 1 and 2; and every kind of bad input is
# refused with a clear message and no output file.
set -euo pipefail
: "${FIPSC_CLI:?run through ctest}" "${FIPSC_SOURCE_DIR:?}" "${FIPSC_BINARY_DIR:?}"
fipsc=$FIPSC_CLI
sts="$FIPSC_SOURCE_DIR/tests/data/sts-small.tsv"
llama="$FIPSC_SOURCE_DIR/models/stories260K.bin"
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_use_distill_cli
model=$(use_model_dir)
# mean_cosine FILE: eval-sts --ref's mean cosine of FILE against the original on the small STS set
mean_cosine() {
  "$fipsc" eval-sts "$1" "$sts" --ref "$tmp/use.safetensors" --json | sed 's/.*"mean_cosine": \([0-9.]*\).*/\1/'
}

expect 0 "$fipsc" import-tfjs "$model" -o "$tmp/use.safetensors"
expect 0 "$fipsc" compress "$tmp/use.safetensors" -o "$tmp/init.safetensors" --method fips-init --budget 0.25 \
  --calib-sentences "$sts" --calib-rows 0 --quiet

common=(--original "$tmp/use.safetensors" --sentences "$sts" --steps 20 --batch 16 --lr 3e-4)
expect 0 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" -o "$tmp/d1.safetensors"
expect_out "mean cos(compressed, original) over 48 sentences"
before=$(sed -n 's/.*sentences ([0-9]* rows): \([0-9.]*\) -> \([0-9.]*\)/\1/p' "$tmp/out")
after=$(sed -n 's/.*sentences ([0-9]* rows): \([0-9.]*\) -> \([0-9.]*\)/\2/p' "$tmp/out")
awk -v b="$before" -v a="$after" 'BEGIN { exit !(a > b + 0.005) }' || fail "printed cosine $before -> $after"
# a basis held in BF16 (--u-dtype bf16: kept in its 16 bits by the runtime) is trained in float32
# and written back as BF16
expect 0 "$fipsc" compress "$tmp/use.safetensors" -o "$tmp/init16.safetensors" --method fips-init --budget 0.25 \
  --calib-sentences "$sts" --calib-rows 0 --quiet --u-dtype bf16
expect 0 "$fipsc" distill "$tmp/init16.safetensors" "${common[@]}" -o "$tmp/d16.safetensors"
b16=$(sed -n 's/.*sentences ([0-9]* rows): \([0-9.]*\) -> \([0-9.]*\)/\1/p' "$tmp/out")
a16=$(sed -n 's/.*sentences ([0-9]* rows): \([0-9.]*\) -> \([0-9.]*\)/\2/p' "$tmp/out")
awk -v b="$b16" -v a="$a16" 'BEGIN { exit !(a > b + 0.005) }' || fail "BF16 U: printed cosine $b16 -> $a16"
expect 0 "$fipsc" inspect "$tmp/d16.safetensors"
expect_out "U BF16, method fips-init"
# the runtime agrees: eval-sts --ref measures the same cosines on the same sentences
ci=$(mean_cosine "$tmp/init.safetensors")
cd1=$(mean_cosine "$tmp/d1.safetensors")
awk -v p="$before" -v m="$ci" 'BEGIN { d = p - m; exit !(d < 1e-5 && d > -1e-5) }' || fail "before: printed $before, eval-sts $ci"
awk -v p="$after" -v m="$cd1" 'BEGIN { d = p - m; exit !(d < 1e-5 && d > -1e-5) }' || fail "after: printed $after, eval-sts $cd1"

# the same sparsity; the compress metadata carried over, the distill metadata added
expect_same_sparsity "$tmp/init.safetensors" "$tmp/d1.safetensors"
expect_out "fipsc.compress = {\"options\":{\"method\":\"fips-init\""
expect_out "fipsc.distill = {\"sentences\":48,"

# deterministic: the same seed gives the same file, whatever the thread count
expect 0 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" -o "$tmp/d2.safetensors" --threads 1 --quiet
cmp -s "$tmp/d1.safetensors" "$tmp/d2.safetensors" || fail "--threads 1 gave a different file"
[ ! -s "$tmp/out" ] || fail "--quiet printed: $(head -c 200 "$tmp/out")"
# without the relational term (on by default) the result differs
expect 0 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" -o "$tmp/d3.safetensors" --relational 0 --quiet
cmp -s "$tmp/d1.safetensors" "$tmp/d3.safetensors" && fail "--relational 0 gave the same file"

# refused, with no output left behind
no_output() { [ ! -e "$tmp/bad.safetensors" ] || { fail "output left behind: $*"; rm -f "$tmp/bad.safetensors"; }; }
expect 1 "$fipsc" distill "$tmp/use.safetensors" "${common[@]}" -o "$tmp/bad.safetensors"
expect_err "not a fipsc compressed file"
no_output "uncompressed input"
expect 1 "$fipsc" distill "$tmp/init.safetensors" --original "$llama" --sentences "$sts" -o "$tmp/bad.safetensors"
expect_err "are different models"
no_output "llama original"
expect 1 "$fipsc" distill "$tmp/init.safetensors" --original "$tmp/use.safetensors" --sentences "$tmp/none.tsv" -o "$tmp/bad.safetensors"
expect_err "none.tsv"
no_output "missing sentences"
printf '\n\n' >"$tmp/empty.txt"
expect 1 "$fipsc" distill "$tmp/init.safetensors" --original "$tmp/use.safetensors" --sentences "$tmp/empty.txt" -o "$tmp/bad.safetensors"
expect_err "no sentences"
no_output "no sentences"
head -c 5000 "$tmp/init.safetensors" >"$tmp/truncated.safetensors"
expect 1 "$fipsc" distill "$tmp/truncated.safetensors" "${common[@]}" -o "$tmp/bad.safetensors"
no_output "truncated input"
expect 1 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" -o "$tmp/no-such-dir/out.safetensors"
expect_err "no-such-dir"
expect 2 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}"
expect_err "missing -o"
expect 2 "$fipsc" distill "$tmp/init.safetensors" --sentences "$sts" -o "$tmp/bad.safetensors"
expect_err "missing --original"
expect 2 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" -o "$tmp/bad.safetensors" --steps 0
expect_err "steps"
expect 2 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" -o "$tmp/bad.safetensors" --lr 1e-3 --lr-min 1e-2
expect_err "lr-min"
expect 2 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" -o "$tmp/bad.safetensors" --relational -1
expect 2 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" -o "$tmp/bad.safetensors" --bogus
expect_err "unknown option"
no_output "usage errors"
expect 0 "$fipsc" distill --help
expect_out "Usage: fipsc distill"

test_end
