#!/usr/bin/env bash
# fipsc compress --v-products auto|dense|sparse (the training step's products over V's kept entries
# or dense GEMMs over the masked V; src/fips/recon.c) on the shipped stories260K: --help documents
# it and a bad value is a usage error; the dry run says which step training runs, and auto gives
# the V-sparse step up for dense products (before spilling) when its lists would exceed
# --max-memory; the three choices give different bits but nearly the same result (the kept
# iterate's held-out score within 3 % of dense: another rounding moves a short, noisy run that
# far); the choice, and each group's count of V-sparse steps, are recorded in the report and in
# the checkpoints (a resume with another choice is refused, naming it); auto's bytes are the same
# on 1 and 2 threads. Kernels and gradients:
# tests/test_factored_tiles.c, test_fips_grad.c, test_fips_sparse_step.c.
set -euo pipefail
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_compress_v_products
fipsc=$FIPSC_CLI
model=$FIPSC_SOURCE_DIR/models/stories260K.bin

expect 0 "$fipsc" compress --help
expect_out "--v-products P"
"$fipsc" sample "$model" --n 8 --len 64 --seed 3 -o "$tmp/calib.tok" >/dev/null
args=("$model" --calib-corpus "$tmp/calib.tok" --steps 120 --quiet)
expect 2 "$fipsc" compress "${args[@]}" --v-products fast -o "$tmp/x.safetensors"
expect_err "--v-products expects auto, dense or sparse, got 'fast'"

plan() { "$fipsc" compress "${args[@]}" "$@" --dry-run | tail -n 1; }
plan_total() { plan "$@" | sed -n 's/^memory plan: \([0-9.]*\) MB.*/\1/p'; }
plan | grep -q "training multiplies by V's kept entries only (V-sparse step)" ||
  fail "the default plan does not say the V-sparse step: $(plan)"
plan --v-products dense | grep -q "V-sparse" && fail "--v-products dense plans the V-sparse step"
plan --sparsity 0.5 | grep -q "V-sparse" && fail "auto plans the V-sparse step at sparsity 0.5 (keeps half of V)"
plan --sparsity 0.5 --v-products sparse | grep -q "V-sparse step" || fail "--v-products sparse is not planned"
sparse_total=$(plan_total)
dense_total=$(plan_total --v-products dense)
awk -v s="$sparse_total" -v d="$dense_total" 'BEGIN { exit !(s > d) }' ||
  fail "the V-sparse step's lists are not counted: $sparse_total MB against $dense_total MB dense"
between=$(awk -v d="$dense_total" 'BEGIN { printf "%.2fMB", d + 0.04 }')
plan --max-memory "$between" | grep -q "densely: the V-sparse step's lists would exceed the budget" ||
  fail "auto under --max-memory $between (dense $dense_total MB, sparse $sparse_total MB): $(plan --max-memory "$between")"
plan --max-memory "$between" | grep -q "spilled" && fail "auto spilled before giving up the V-sparse step"
expect 1 "$fipsc" compress "${args[@]}" --v-products sparse --max-memory "$between" --spill never -o "$tmp/x.safetensors"
expect_err "nothing was done"

for v in auto dense sparse; do
  expect 0 "$fipsc" compress "${args[@]}" --v-products $v --threads 1 -o "$tmp/$v.safetensors" --report "$tmp/$v.json" \
    --checkpoint-dir "$tmp/ck-$v"
done
cmp -s "$tmp/auto.safetensors" "$tmp/dense.safetensors" && fail "auto gave dense's bytes: the V-sparse step did not run"
cmp -s "$tmp/sparse.safetensors" "$tmp/auto.safetensors" && fail "sparse gave auto's bytes (auto starts dense)"
grep -q '"v_sparse_step":[[:space:]]*true' "$tmp/auto.json" || fail "the report does not say the V-sparse step"
grep -q '"v_products":[[:space:]]*"dense"' "$tmp/dense.json" || fail "the report does not record --v-products dense"
# steps run V-sparse, per group: none dense, all of them sparse, some (from the step GMP reaches 35 %) auto
sparse_steps() { sed -n 's/.*"v_sparse_steps":[[:space:]]*\([0-9]*\).*/\1/p' "$1" | tr '\n' ' '; }
[ "$(sparse_steps "$tmp/dense.json")" = "0 0 " ] || fail "dense ran V-sparse steps: $(sparse_steps "$tmp/dense.json")"
[ "$(sparse_steps "$tmp/sparse.json")" = "120 120 " ] || fail "sparse ran $(sparse_steps "$tmp/sparse.json") V-sparse steps of 120"
for n in $(sparse_steps "$tmp/auto.json"); do
  [ "$n" -gt 0 ] && [ "$n" -lt 120 ] || fail "auto ran $n V-sparse steps of 120 (GMP reaches 35 % kept part-way)"
done
score() { sed -n 's/.*"score_kept":[[:space:]]*\([0-9.e+-]*\).*/\1/p' "$1" | head -n 1; }
for v in auto sparse; do
  awk -v a="$(score "$tmp/$v.json")" -v b="$(score "$tmp/dense.json")" 'BEGIN { exit !(a > 0 && b > 0 && (a - b) / b < 0.03 && (b - a) / b < 0.03) }' ||
    fail "$v: group 0's kept score $(score "$tmp/$v.json") is not within 3 % of dense's $(score "$tmp/dense.json")"
done
expect 0 "$fipsc" compress "${args[@]}" --threads 2 -o "$tmp/auto2.safetensors"
cmp -s "$tmp/auto.safetensors" "$tmp/auto2.safetensors" || fail "auto: 1 and 2 threads differ"

expect 1 "$fipsc" compress "${args[@]}" --v-products dense -o "$tmp/y.safetensors" --checkpoint-dir "$tmp/ck-auto" --resume
expect_err "was made with --v-products auto, this run has --v-products dense"
[ ! -e "$tmp/y.safetensors" ] || fail "a refused resume wrote its output"
rm "$tmp/ck-auto/group-001.safetensors"
expect 0 "$fipsc" compress "${args[@]}" --threads 2 -o "$tmp/auto-resumed.safetensors" --checkpoint-dir "$tmp/ck-auto" --resume
cmp -s "$tmp/auto.safetensors" "$tmp/auto-resumed.safetensors" || fail "a resumed auto run differs"

test_end
