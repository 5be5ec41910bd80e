#!/usr/bin/env bash
# `fipsc distill` end to end on an image classifier: DeiT-MNIST compressed by fips-init and
# distilled on the sample digits gets closer to the original (the printed KL), keeps its sparsity,
# carries the compress metadata and adds its own, is the same file for thread counts 1 and 2, and
# --count/--exclude select the images; bad input is refused with a clear message and no output.
set -euo pipefail
: "${FIPSC_CLI:?run through ctest}" "${FIPSC_SOURCE_DIR:?}" "${FIPSC_BINARY_DIR:?}"
fipsc=$FIPSC_CLI
deit="$FIPSC_SOURCE_DIR/models/deit-mnist"
images="$FIPSC_SOURCE_DIR/models/deit-mnist-sample"
llama="$FIPSC_SOURCE_DIR/models/stories260K.bin"
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_vit_distill_cli

expect 0 "$fipsc" compress "$deit" -o "$tmp/init.safetensors" --method fips-init --budget 0.1 \
  --calib-images "$images" --quiet
common=(--original "$deit" --images "$images" --steps 20 --batch 8)
expect 0 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" -o "$tmp/d1.safetensors"
expect_out "mean KL(original || compressed) of the logits over 20 images"
expect_out "20 steps of 8 images"
before=$(sed -n 's/.*images: \([0-9.]*\) -> \([0-9.]*\)/\1/p' "$tmp/out")
after=$(sed -n 's/.*images: \([0-9.]*\) -> \([0-9.]*\)/\2/p' "$tmp/out")
awk -v b="$before" -v a="$after" 'BEGIN { exit !(a < 0.9 * b) }' || fail "printed KL $before -> $after"

expect_same_sparsity "$tmp/init.safetensors" "$tmp/d1.safetensors"
expect_out "fipsc.compress = {\"options\":{\"method\":\"fips-init\""
expect_out "fipsc.distill = {\"images\":20,"
# the distilled file classifies
expect 0 "$fipsc" classify "$tmp/d1.safetensors" "$images/0000.png"

expect 0 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" -o "$tmp/d2.safetensors" --threads 1 --quiet
cmp -s "$tmp/d1.safetensors" "$tmp/d2.safetensors" || fail "--threads 1 gave a different file"
# --count takes the first images, --exclude skips those of a directory (or of several)
mkdir -p "$tmp/held"
cp "$images/0000.png" "$images/0001.png" "$tmp/held/"
expect 0 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" --count 5 -o "$tmp/d3.safetensors"
expect_out "over 5 images"
expect 0 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" --exclude "$tmp/held" -o "$tmp/d4.safetensors"
expect_out "over 18 images"
mkdir -p "$tmp/held2"
cp "$images/0005.png" "$tmp/held2/"
expect 0 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" --exclude "$tmp/held" --exclude "$tmp/held2" --quiet \
  -o "$tmp/d5.safetensors"
expect 0 "$fipsc" inspect "$tmp/d5.safetensors"
expect_out "fipsc.distill = {\"images\":17,"

no_output() { [ ! -e "$tmp/bad.safetensors" ] || { fail "output left behind: $*"; rm -f "$tmp/bad.safetensors"; }; }
expect 2 "$fipsc" distill "$tmp/init.safetensors" --original "$deit" --corpus "$tmp/none.tok" -o "$tmp/bad.safetensors"
expect_err "is an image classifier: give its calibration data with --images PATH"
no_output "corpus for an image classifier"
expect 1 "$fipsc" distill "$tmp/init.safetensors" --original "$deit" --images "$tmp/none" -o "$tmp/bad.safetensors"
expect_err "none"
no_output "missing images"
expect 1 "$fipsc" distill "$tmp/init.safetensors" --original "$llama" --images "$images" -o "$tmp/bad.safetensors"
expect_err "are different models"
no_output "llama original"
expect 2 "$fipsc" distill "$tmp/init.safetensors" "${common[@]}" --hidden 1 -o "$tmp/bad.safetensors"
expect_err "sentence encoder's terms"
expect 2 "$fipsc" distill "$tmp/init.safetensors" --original "$deit" --count 3 --corpus x -o "$tmp/bad.safetensors"
expect_err "go with --images"
no_output "usage errors"

test_end
