#!/usr/bin/env bash
# fipsc compress --adam-moments bf16 (V's Adam moments stored as bfloat16 by stochastic rounding)
# on the shipped stories260K: the memory plan's training phase shrinks (both plans count the V-sparse
# step's lists at the default --v-products auto); the option is recorded in
# the report and the checkpoints (a resume with the other is refused, naming it) and changes the
# result; the same bytes on 1 and 2 threads and on a resume; bf16 is the Llama family's default
# (--help says so; an option given wins). The rounding itself: tests/test_fips_schedule.c.
set -euo pipefail
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_compress_moments
fipsc=$FIPSC_CLI
model=$FIPSC_SOURCE_DIR/models/stories260K.bin

expect 0 "$fipsc" compress --help
expect_out "--adam-moments T"
expect_out "llama .* --adam-moments bf16"
expect_out "vit .* --adam-moments f32"
"$fipsc" sample "$model" --n 8 --len 64 --seed 3 -o "$tmp/calib.tok" >/dev/null
args=("$model" --calib-corpus "$tmp/calib.tok" --steps 40 --quiet)

expect 2 "$fipsc" compress "${args[@]}" --adam-moments f16 -o "$tmp/x.safetensors"
expect_err "must be f32 or bf16, got 'f16'"
group_plan() { "$fipsc" compress "${args[@]}" "$@" --dry-run | grep -o 'largest group (group [0-9]*) [0-9.]* [kMG]*B'; }
[ "$(group_plan --adam-moments f32)" = "largest group (group 1) 5.6 MB" ] ||
  fail "f32 moments plan $(group_plan --adam-moments f32)"
[ "$(group_plan --adam-moments bf16)" = "largest group (group 1) 4.9 MB" ] || fail "bf16 moments plan $(group_plan --adam-moments bf16)"
[ "$(group_plan)" = "largest group (group 1) 4.9 MB" ] || fail "the default (bf16 for the Llama family) plans $(group_plan)"

for t in 1 2; do
  expect 0 "$fipsc" compress "${args[@]}" --adam-moments bf16 --threads $t -o "$tmp/b$t.safetensors" --report "$tmp/b$t.json"
done
cmp -s "$tmp/b1.safetensors" "$tmp/b2.safetensors" || fail "bf16 moments: 1 and 2 threads differ"
grep -q '"adam_moments":[[:space:]]*"bf16"' "$tmp/b1.json" || fail "the report does not record --adam-moments bf16"
expect 0 "$fipsc" compress "${args[@]}" --adam-moments f32 --threads 1 -o "$tmp/f.safetensors" --checkpoint-dir "$tmp/ckf"
cmp -s "$tmp/f.safetensors" "$tmp/b1.safetensors" && fail "bf16 moments gave the float32 run's file"
expect 0 "$fipsc" compress "${args[@]}" --threads 1 -o "$tmp/d.safetensors"
cmp -s "$tmp/d.safetensors" "$tmp/b1.safetensors" || fail "the Llama default is not bf16 moments"

expect 1 "$fipsc" compress "${args[@]}" --adam-moments bf16 -o "$tmp/y.safetensors" --checkpoint-dir "$tmp/ckf" --resume
expect_err "was made with --adam-moments f32, this run has --adam-moments bf16"
expect 0 "$fipsc" compress "${args[@]}" --adam-moments bf16 --threads 1 -o "$tmp/b.safetensors" --checkpoint-dir "$tmp/ckb"
expect 1 "$fipsc" compress "${args[@]}" --adam-moments f32 -o "$tmp/y.safetensors" --checkpoint-dir "$tmp/ckb" --resume
expect_err "was made with --adam-moments bf16, this run has --adam-moments f32"
[ ! -e "$tmp/y.safetensors" ] || fail "a refused resume wrote its output"
rm "$tmp/ckb/group-001.safetensors"
expect 0 "$fipsc" compress "${args[@]}" --adam-moments bf16 --threads 2 -o "$tmp/b-resumed.safetensors" \
  --checkpoint-dir "$tmp/ckb" --resume
cmp -s "$tmp/b1.safetensors" "$tmp/b-resumed.safetensors" || fail "a resumed bf16-moments run differs"

test_end
