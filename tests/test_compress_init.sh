#!/usr/bin/env bash
# fipsc compress --init whitened (the SVD of W_cat whitened by the calibration inputs' second
# moments, beyond the paper) on the shipped stories260K: refused where it has no meaning, recorded
# in the file, the report and the checkpoints (a resume with the other initialisation is refused,
# naming it); it lowers the untrained initialisation's output error of every group (what it is
# for); the same bytes on 1 and 2 threads. The factorisation itself: tests/test_fips_whiten.c.
set -euo pipefail
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_compress_init
fipsc=$FIPSC_CLI
model=$FIPSC_SOURCE_DIR/models/stories260K.bin

# The mean over every MLP of the report's output error after compression.
mean_error() {
  node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const e = r.groups.flatMap(g => g.mlps.map(m => m.output_rel_err_after));
    console.log((e.reduce((a, b) => a + b, 0) / e.length).toFixed(6))' "$1"
}

expect 0 "$fipsc" compress --help
expect_out "--init I"

"$fipsc" sample "$model" --n 8 --len 64 --seed 3 -o "$tmp/calib.tok" >/dev/null
args=("$model" --calib-corpus "$tmp/calib.tok" --quiet)

expect 2 "$fipsc" compress "${args[@]}" --init pca -o "$tmp/x.safetensors"
expect_err "must be svd or whitened, got 'pca'"
expect 2 "$fipsc" compress "${args[@]}" --method svd --init whitened -o "$tmp/x.safetensors"
expect_err "applies to fips, fips-init and shared-svd, not to svd"
[ ! -e "$tmp/x.safetensors" ] || fail "a refused run wrote its output"

# The untrained initialisation: whitening lowers the calibration output error of the model's MLPs.
for init in svd whitened; do
  expect 0 "$fipsc" compress "${args[@]}" --method fips-init --init $init -o "$tmp/fi-$init.safetensors" \
    --report "$tmp/fi-$init.json"
done
plain=$(mean_error "$tmp/fi-svd.json") whitened=$(mean_error "$tmp/fi-whitened.json")
awk -v a="$whitened" -v b="$plain" 'BEGIN { exit !(a < 0.99 * b) }' ||
  fail "whitened fips-init: mean output error $whitened, not below the SVD's $plain"
grep -aq 'init[^a-z]*whitened' "$tmp/fi-whitened.safetensors" || fail "the file does not record --init whitened"
grep -aq 'whitened' "$tmp/fi-svd.safetensors" && fail "a plain-SVD file mentions whitening"
grep -q '"init":[[:space:]]*"whitened"' "$tmp/fi-whitened.json" || fail "the report does not record --init whitened"

# Trained: the same bytes on 1 and 2 threads.
for t in 1 2; do
  expect 0 "$fipsc" compress "${args[@]}" --steps 40 --init whitened --threads $t -o "$tmp/w$t.safetensors"
done
cmp -s "$tmp/w1.safetensors" "$tmp/w2.safetensors" || fail "whitened: 1 and 2 threads differ"

# Checkpoints remember the initialisation, both ways.
expect 0 "$fipsc" compress "${args[@]}" --steps 40 --threads 1 -o "$tmp/c.safetensors" --checkpoint-dir "$tmp/ck"
expect 1 "$fipsc" compress "${args[@]}" --steps 40 --init whitened -o "$tmp/y.safetensors" --checkpoint-dir "$tmp/ck" --resume
expect_err "was made with --init svd, this run has --init whitened"
expect 0 "$fipsc" compress "${args[@]}" --steps 40 --init whitened --threads 1 -o "$tmp/w.safetensors" --checkpoint-dir "$tmp/ckw"
expect 1 "$fipsc" compress "${args[@]}" --steps 40 -o "$tmp/y.safetensors" --checkpoint-dir "$tmp/ckw" --resume
expect_err "was made with --init whitened, this run has --init svd"
rm "$tmp/ckw/group-001.safetensors"
expect 0 "$fipsc" compress "${args[@]}" --steps 40 --init whitened --threads 1 -o "$tmp/w-resumed.safetensors" \
  --checkpoint-dir "$tmp/ckw" --resume
cmp -s "$tmp/w1.safetensors" "$tmp/w-resumed.safetensors" || fail "a resumed whitened run differs"
[ ! -e "$tmp/y.safetensors" ] || fail "a refused resume wrote its output"

test_end
