#!/usr/bin/env bash
# fipsc compress --sequential (sequential calibration) on the shipped stories260K: with a single
# group it is teacher forcing (the same tensors bit for bit; only the recorded option differs);
# with five groups the first group is unchanged and the later groups are fitted on other rows (the
# partly compressed model's); the memory plan holds one group's rows; a resumed sequential run is
# byte-identical to an uninterrupted one; a sampled calibration corpus and several MPI ranks are
# refused with a reason.
set -euo pipefail
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_compress_sequential
fipsc=$FIPSC_CLI
model=$FIPSC_SOURCE_DIR/models/stories260K.bin

# The tensors of a safetensors file: everything after its header.
data() {
  local h
  h=$(od -An -t u8 -N 8 "$1" | tr -d ' ')
  tail -c +$((9 + h)) "$1"
}
# "before->after" output errors of every MLP of group K in a --report file.
group_errors() {
  node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    console.log(r.groups[+process.argv[2]].mlps.map(m => m.output_rel_err_before + "->" + m.output_rel_err_after).join(" "))' "$1" "$2"
}

expect 0 "$fipsc" compress --help
expect_out "--sequential"

"$fipsc" sample "$model" --n 8 --len 64 --seed 3 -o "$tmp/calib.tok" >/dev/null
args=("$model" --steps 40 --calib-corpus "$tmp/calib.tok" --threads 1 --quiet)

# Every group's rows first contradicts capturing each on the partly compressed model.
expect 2 "$fipsc" compress "${args[@]}" --sequential --capture-all -o "$tmp/x.safetensors"
expect_err "it cannot capture every group's rows first (--capture-all)"

# Sampled calibration would be resampled from the compressed model: refused, naming the way out.
expect 2 "$fipsc" compress "$model" --sequential -o "$tmp/x.safetensors"
expect_err "needs calibration tokens that do not depend on the model"
[ ! -e "$tmp/x.safetensors" ] || fail "a refused run wrote its output"

# One group: nothing is compressed before it, so sequential calibration is teacher forcing.
expect 0 "$fipsc" compress "${args[@]}" --groups 0-4 -o "$tmp/one-t.safetensors"
expect 0 "$fipsc" compress "${args[@]}" --groups 0-4 --sequential -o "$tmp/one-s.safetensors"
cmp -s <(data "$tmp/one-t.safetensors") <(data "$tmp/one-s.safetensors") ||
  fail "one group: the sequential run's tensors differ from teacher forcing's"
grep -q 'sequential' "$tmp/one-s.safetensors" || fail "the option is not recorded in the file"
grep -q 'sequential' "$tmp/one-t.safetensors" && fail "a teacher-forced file mentions sequential calibration"

# Five groups: group 0 as before, the later groups fitted on the partly compressed model's rows.
expect 0 "$fipsc" compress "${args[@]}" --groups 1 -o "$tmp/five-t.safetensors" --report "$tmp/five-t.json"
expect 0 "$fipsc" compress "${args[@]}" --groups 1 --sequential -o "$tmp/five-s.safetensors" --report "$tmp/five-s.json"
[ "$(group_errors "$tmp/five-t.json" 0)" = "$(group_errors "$tmp/five-s.json" 0)" ] ||
  fail "group 0 differs: $(group_errors "$tmp/five-t.json" 0) vs $(group_errors "$tmp/five-s.json" 0)"
changed=0
for k in 1 2 3 4; do
  [ "$(group_errors "$tmp/five-t.json" $k)" = "$(group_errors "$tmp/five-s.json" $k)" ] || changed=$((changed + 1))
done
[ "$changed" = 4 ] || fail "sequential calibration changed $changed of the 4 later groups (expected all)"

# The memory plan holds one group's rows at a time (streamed: with the residual stream, 512 rows
# of 64 floats; every group's rows at once with --capture-all).
rows_planned() { "$fipsc" compress "${args[@]}" --groups 1 "$@" --dry-run | grep -o 'calibration rows [0-9.]* [kMG]*B'; }
[ "$(rows_planned)" = "calibration rows 393 kB" ] || fail "teacher forcing (streamed) plans $(rows_planned)"
[ "$(rows_planned --capture-all)" = "calibration rows 1.3 MB" ] || fail "teacher forcing (--capture-all) plans $(rows_planned --capture-all)"
[ "$(rows_planned --sequential)" = "calibration rows 262 kB" ] || fail "sequential plans $(rows_planned --sequential)"

# Resumed: the restored groups put the model back as it was, so the later groups' rows are the same.
expect 0 "$fipsc" compress "${args[@]}" --groups 1 --sequential -o "$tmp/ck1.safetensors" --checkpoint-dir "$tmp/ck"
rm "$tmp/ck/group-002.safetensors" "$tmp/ck/group-004.safetensors"
expect 0 "$fipsc" compress "${args[@]}" --groups 1 --sequential -o "$tmp/ck2.safetensors" --checkpoint-dir "$tmp/ck" --resume
cmp -s "$tmp/five-s.safetensors" "$tmp/ck2.safetensors" || fail "a resumed sequential run differs"
# Checkpoints of the other calibration are refused: a teacher-forced resume of sequential ones by
# the later groups' rows (group 0's are the same), a sequential resume of teacher-forced ones by
# the option.
expect 1 "$fipsc" compress "${args[@]}" --groups 1 -o "$tmp/ck3.safetensors" --checkpoint-dir "$tmp/ck" --resume
expect_err "was made with calibration rows"
expect 0 "$fipsc" compress "${args[@]}" --groups 1 -o "$tmp/ckt1.safetensors" --checkpoint-dir "$tmp/ckt"
expect 1 "$fipsc" compress "${args[@]}" --groups 1 --sequential -o "$tmp/ckt2.safetensors" --checkpoint-dir "$tmp/ckt" --resume
expect_err "was made with --sequential false, this run has --sequential true"

if [ -n "${FIPSC_MPIEXEC:-}" ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
  export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
  export LSAN_OPTIONS="suppressions=$FIPSC_SOURCE_DIR/tests/lsan-openmpi.supp:print_suppressions=0"
  expect 2 "$FIPSC_MPIEXEC" --oversubscribe -np 2 "$fipsc" compress "${args[@]}" --sequential -o "$tmp/mpi.safetensors"
  expect_err "runs in one process"
fi
test_end
