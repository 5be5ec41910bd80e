#!/usr/bin/env bash
# Numeric failures of `fipsc compress` (issue 7, part 4) on modified copies of stories260K: NaN
# in an MLP weight and Inf in a non-MLP weight (refused at load, naming the tensor), activations
# that overflow on the calibration data (the group, block and row named), and a training that
# diverges (the group, MLP and step named; with --divergence-retries restarted at half the
# learning rate, on stderr and in the report). Every failure: exit 1 and no output file, nor a
# temporary one.
set -euo pipefail
fipsc=$FIPSC_CLI
model=$FIPSC_SOURCE_DIR/models/stories260K.bin
tmp=$FIPSC_BINARY_DIR/test-tmp/test_compress_numeric_cli
rm -rf "$tmp" && mkdir -p "$tmp/out"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
out=$tmp/out/c.safetensors
quick=(--steps 50 --batch 64 --groups 0-1,2-4)
printf '1 20 30 40 50 60 70 80\n1 7 9 11 13 15 17 19\n' >"$tmp/calib.txt"

# patch OUT EDIT: a copy of stories260K whose float32 weights w (after the 28-byte header, in
# llama2.c order) are changed by the JavaScript statement EDIT. Offsets (floats) for dim 64,
# hidden 172, 5 layers, kv dim 32, vocab 512: w1 (gate) at 94848, w2 (down) at 149888, w3 (up)
# at 204928, each [5, 172, 64] or [5, 64, 172]; the final norm at 259968.
patch() {
  node -e '
    const fs = require("fs");
    const b = fs.readFileSync(process.argv[1]);
    const w = new Float32Array(b.buffer, b.byteOffset + 28, (b.length - 28) / 4);
    const W1 = 94848, W2 = 149888, W3 = 204928, NORM = 259968, L = 172 * 64;
    eval(process.argv[3]);
    fs.writeFileSync(process.argv[2], b);' "$model" "$1" "$2"
}

expect_failure() { # NAME MESSAGE ARGS...: compress fails with status 1, MESSAGE, no file left
  local name=$1 msg=$2 rc=0 before=$failures
  shift 2
  "$fipsc" compress "$@" >/dev/null 2>"$tmp/stderr.txt" || rc=$?
  [ "$rc" = 1 ] || fail "$name: exit status $rc, expected 1: $(head -c 600 "$tmp/stderr.txt")"
  grep -qF -- "$msg" "$tmp/stderr.txt" || fail "$name: stderr lacks '$msg': $(head -c 600 "$tmp/stderr.txt")"
  [ -z "$(ls -A "$tmp/out")" ] || { fail "$name: left files behind: $(ls -A "$tmp/out")"; rm -f "$tmp/out"/*; }
  [ "$failures" != "$before" ] || echo "ok: $name: $(tail -n 1 "$tmp/stderr.txt")"
}

# NaN in a weight of block 3's MLP, Inf in the final norm: the loader refuses them by name.
patch "$tmp/nan-mlp.bin" 'w[W1 + 3 * L + 5 * 64 + 7] = NaN;'
expect_failure "NaN in an MLP weight" "tensor 'model.layers.3.mlp.gate_proj.weight' holds a non-finite value (nan) at flat index 327" \
  "$tmp/nan-mlp.bin" -o "$out" "${quick[@]}" --calib-corpus "$tmp/calib.txt"
patch "$tmp/inf-norm.bin" 'w[NORM + 9] = Infinity;'
expect_failure "Inf in a non-MLP weight" "tensor 'model.norm.weight' holds a non-finite value (inf) at flat index 9" \
  "$tmp/inf-norm.bin" -o "$out" "${quick[@]}" --calib-corpus "$tmp/calib.txt"

# Finite weights whose activations overflow: neuron 5 of block 1 has gate and up rows of 3.4e38,
# so its gate·up product is Inf on every token.
patch "$tmp/overflow.bin" 'for (let i = 0; i < 64; i++) { w[W1 + L + 5 * 64 + i] = 3.4e38; w[W3 + L + 5 * 64 + i] = 3.4e38; }'
# Whether the first non-finite value is inf or nan depends on the BLAS kernel's order of
# accumulation (inf + -inf is nan), so on the CPU: either is right, at row 0.
expect_failure "overflowing activations (corpus)" "group 0 (blocks 0-1): the calibration MLP output y of block 1 is" \
  "$tmp/overflow.bin" -o "$out" "${quick[@]}" --calib-corpus "$tmp/calib.txt"
grep -qE "output y of block 1 is -?(inf|nan) at row 0" "$tmp/stderr.txt" ||
  fail "overflowing activations (corpus): not a non-finite value at row 0: $(head -c 600 "$tmp/stderr.txt")"
# ... also when the calibration is sampled from that model (its logits are NaN after block 1).
expect_failure "overflowing activations (sampled)" "group 0 (blocks 0-1): the calibration MLP output y of block 1 is" \
  "$tmp/overflow.bin" -o "$out" "${quick[@]}" --calib-samples 2 --calib-len 16

# Block 0's down projection scaled by 1e-4: Adam's first steps move every V entry by about the
# learning rate, far beyond the down projection's tiny entries, so the loss (normalised by the
# outputs' mean square) exceeds 1e4 within a few steps at the default learning rate 0.01, which
# counts as diverged; it trains at about 1e-4 (6 halvings).
patch "$tmp/tiny-down.bin" 'for (let i = 0; i < L; i++) w[W2 + i] *= 1e-4;'
expect_failure "diverging training" "group 0 (blocks 0-1): FiPS training: the loss of MLP 0 became" \
  "$tmp/tiny-down.bin" -o "$out" "${quick[@]}" --calib-corpus "$tmp/calib.txt"
grep -qF "lower the learning rate" "$tmp/stderr.txt" || fail "the divergence message does not suggest a lower learning rate"
expect_failure "diverging training, retries exhausted" "training diverged again after 1 retry with the learning rate halved each time (last 0.01)" \
  "$tmp/tiny-down.bin" -o "$out" "${quick[@]}" --calib-corpus "$tmp/calib.txt" --lr 0.02 --divergence-retries 1

# With retries: restarted at half the learning rate until it trains, on stderr and in the report.
rc=0
"$fipsc" compress "$tmp/tiny-down.bin" -o "$out" "${quick[@]}" --calib-corpus "$tmp/calib.txt" \
  --divergence-retries 20 --report "$tmp/report.json" >/dev/null 2>"$tmp/stderr.txt" || rc=$?
[ "$rc" = 0 ] || fail "--divergence-retries 20: exit status $rc: $(head -c 600 "$tmp/stderr.txt")"
grep -qF "group 1/2 (blocks 0-1): training diverged (FiPS training: the loss of MLP 0 became" "$tmp/stderr.txt" &&
  grep -qF "retry 1 from the same start with the learning rate halved to 0.005" "$tmp/stderr.txt" ||
  fail "the retry is not announced on stderr: $(head -c 600 "$tmp/stderr.txt")"
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const [g0, g1] = r.groups;
  if (!(g0.retries >= 1 && Math.abs(g0.lr - 0.01 / 2 ** g0.retries) < 1e-9)) throw new Error(`group 0: retries ${g0.retries}, lr ${g0.lr}`);
  if (!(g1.retries === 0 && g1.lr === 0.01)) throw new Error(`group 1: retries ${g1.retries}, lr ${g1.lr}`);
  console.log(`ok: retried: group 0 trained after ${g0.retries} retries at lr ${g0.lr}`);' "$tmp/report.json" ||
  fail "the report does not record the retries"
"$fipsc" inspect "$out" >/dev/null || fail "the file written after retries does not load"
rm -f "$out"
rc=0
"$fipsc" compress "$model" -o "$out" --divergence-retries 61 2>"$tmp/stderr.txt" || rc=$?
[ "$rc" = 2 ] && grep -qF -- "--divergence-retries" "$tmp/stderr.txt" || fail "--divergence-retries 61: status $rc: $(cat "$tmp/stderr.txt")"

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "test_compress_numeric_cli: all checks passed"
