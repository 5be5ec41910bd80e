#!/usr/bin/env bash
# `mpirun -np K fipsc compress` on the shipped stories260K (five groups of one block): the groups
# shared among 2, 3 and 7 processes give a file byte-identical to one process's; a rank run with
# another option is caught by rank 0 (the received group's inputs differ) and a rank killed with
# SIGKILL stops the job, both with no output; --checkpoint-dir + --resume work across ranks and
# across rank counts. Without MPI in the build, `compress --help` says so and a launch by an MPI
# launcher is refused instead of running K copies of the whole job.
set -euo pipefail
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_compress_mpi
fipsc=$FIPSC_CLI
model=$FIPSC_SOURCE_DIR/models/stories260K.bin
args=("$model" --groups 1 --steps 40 --calib-samples 8 --calib-len 64 --batch 128 --threads 1)

if [ -z "${FIPSC_MPIEXEC:-}" ]; then
  # Built without MPI: the feature is absent, and said to be.
  expect 0 "$fipsc" compress --help
  expect_out "not in this build"
  expect 1 env OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 "$fipsc" compress "${args[@]}" -o "$tmp/x.safetensors"
  expect_err "built without MPI"
  [ ! -e "$tmp/x.safetensors" ] || fail "a refused launch wrote its output"
  test_end
  exit 0
fi

# OpenMPI refuses root unless told (CI runs as root); --oversubscribe: more ranks than cores.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Under the ASan build: full allocation stacks, so that OpenMPI's own leaks can be told from
# fipsc's (tests/lsan-openmpi.supp); no effect on other builds.
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}fast_unwind_on_malloc=0"
export LSAN_OPTIONS="suppressions=$FIPSC_SOURCE_DIR/tests/lsan-openmpi.supp:print_suppressions=0"
mpirun=("$FIPSC_MPIEXEC" --oversubscribe)

expect 0 "$fipsc" compress --help
expect_out "mpirun -np K fipsc compress"

# The reference: one process.
expect 0 "$fipsc" compress "${args[@]}" -o "$tmp/one.safetensors" --quiet
[ -s "$tmp/one.safetensors" ] || { fail "no reference output"; test_end; }

# 2, 3 and 7 processes (7 > 5 groups: two ranks have none) write the same bytes.
for k in 2 3 7; do
  expect 0 "${mpirun[@]}" -np "$k" "$fipsc" compress "${args[@]}" -o "$tmp/np$k.safetensors" --report "$tmp/np$k.json"
  cmp -s "$tmp/one.safetensors" "$tmp/np$k.safetensors" || fail "mpirun -np $k: output differs from one process's"
done
# The report says who computed what; the other ranks' progress is prefixed with their rank.
grep -q '"computed_by_rank":[[:space:]]*2' "$tmp/np3.json" || fail "the -np 3 report does not name rank 2"
expect 0 "${mpirun[@]}" -np 3 "$fipsc" compress "${args[@]}" -o "$tmp/np3b.safetensors"
expect_err "rank 1/3: group 3/5"
expect_err "rank 0/3: group 4/5 (blocks 3-3): received from rank 1"

# A rank started with another option: rank 0 refuses its group, names the option, writes nothing.
expect 1 "${mpirun[@]}" -np 1 "$fipsc" compress "${args[@]}" -o "$tmp/mixed.safetensors" \
  : -np 1 "$fipsc" compress "${args[@]}" --seed 5 -o "$tmp/mixed.safetensors"
expect_err "computed by rank 1"
expect_err "seed"
[ ! -e "$tmp/mixed.safetensors" ] || fail "a job with a mismatched rank wrote its output"

# A rank killed with SIGKILL while it computes (rank 0 has far more work than the kill leaves):
# the job stops with an error, no output, no temporary file beside it.
long=("$model" --groups 1 --steps 100000 --calib-samples 8 --calib-len 64 --threads 1 --quiet)
start=$(date +%s)
rc=0
timeout 300 "${mpirun[@]}" -np 1 "$fipsc" compress "${long[@]}" -o "$tmp/killed.safetensors" \
  : -np 1 timeout -s KILL 3 "$fipsc" compress "${long[@]}" -o "$tmp/killed.safetensors" \
  >"$tmp/killed.out" 2>"$tmp/killed.err" || rc=$?
[ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] || fail "killed rank: mpirun exited $rc (expected a failure, not a timeout)"
[ $(($(date +%s) - start)) -lt 200 ] || fail "killed rank: the job took $(($(date +%s) - start)) s to stop"
ls "$tmp" | grep -q '^killed\.safetensors' && fail "killed rank: left $(ls "$tmp" | grep '^killed')"

# Checkpoints across ranks: a 2-rank run saves every group; after two are deleted a 3-rank resume
# recomputes them and a 1-process resume reuses all: the same bytes each time.
expect 0 "${mpirun[@]}" -np 2 "$fipsc" compress "${args[@]}" -o "$tmp/ck2.safetensors" --checkpoint-dir "$tmp/ck" --quiet
cmp -s "$tmp/one.safetensors" "$tmp/ck2.safetensors" || fail "checkpointed -np 2 output differs"
[ "$(ls "$tmp/ck" | grep -c '^group-00[0-4]\.safetensors$')" = 5 ] || fail "expected 5 checkpoints: $(ls "$tmp/ck")"
expect 2 "${mpirun[@]}" -np 2 "$fipsc" compress "${args[@]}" -o "$tmp/again.safetensors" --checkpoint-dir "$tmp/ck"
expect_err "already holds checkpoints"
rm "$tmp/ck/group-001.safetensors" "$tmp/ck/group-003.safetensors"
expect 0 "${mpirun[@]}" -np 3 "$fipsc" compress "${args[@]}" -o "$tmp/ck3.safetensors" --checkpoint-dir "$tmp/ck" --resume
cmp -s "$tmp/one.safetensors" "$tmp/ck3.safetensors" || fail "-np 3 resume output differs"
expect_err "(from its checkpoint)"
expect 0 "$fipsc" compress "${args[@]}" -o "$tmp/ck1.safetensors" --checkpoint-dir "$tmp/ck" --resume
cmp -s "$tmp/one.safetensors" "$tmp/ck1.safetensors" || fail "1-process resume of a 3-rank run differs"
test_end
