#!/usr/bin/env bash
# Resource failures (issue 7, part 3), each a clear error with exit status 1, no crash, no hang
# and no output or temporary file left behind:
#   (a) allocation failure under a limited address space (RLIMIT_AS via `ulimit -v`): a model file
#       larger than the limit (the map fails), one that maps but cannot be copied (malloc fails),
#       and a compression whose calibration cannot be allocated;
#   (b) file-size limit while writing (RLIMIT_FSIZE via `ulimit -f`, SIGXFSZ ignored so that the
#       write fails with EFBIG: the same path a full disk takes with ENOSPC, which cannot be
#       simulated for a file here without mounting a small file system) for the compressed model
#       and the report; and a full standard output (/dev/full, a real ENOSPC);
#   (c) unreadable input: a directory, a FIFO without writer (must not block), a path under a
#       regular file (ENOTDIR), a FIFO config.json, and a file without read permission (only
#       when not running as root: root reads it anyway, so that case says it is not covered);
#   (d) a missing output directory, an output path that is a directory, and one under a file.
set -euo pipefail
fipsc=$FIPSC_CLI
model=$FIPSC_SOURCE_DIR/models/stories260K.bin
tmp=$FIPSC_BINARY_DIR/test-tmp/test_resource_failures
rm -rf "$tmp" && mkdir -p "$tmp/out"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
quick=(--calib-samples 2 --calib-len 16 --steps 10 --batch 64 --quiet)

# expect_failure NAME MESSAGE CMD...: exit status 1 (not a signal, not a hang: 60 s at most), MESSAGE
# on stderr, nothing left in $tmp/out.
expect_failure() {
  local name=$1 msg=$2
  shift 2
  local rc=0 before=$failures
  timeout 60 "$@" >"$tmp/stdout.txt" 2>"$tmp/stderr.txt" || rc=$?
  if [ "$rc" = 124 ]; then fail "$name: still running after 60 s (hang)"; return 0; fi
  [ "$rc" = 1 ] || fail "$name: exit status $rc, expected 1: $(head -c 600 "$tmp/stderr.txt")"
  grep -qF -- "$msg" "$tmp/stderr.txt" || fail "$name: stderr lacks '$msg': $(head -c 600 "$tmp/stderr.txt")"
  if [ -n "$(ls -A "$tmp/out")" ]; then fail "$name: left files behind: $(ls -A "$tmp/out")"; rm -rf "$tmp/out"/*; fi
  [ "$failures" != "$before" ] || echo "ok: $name: $(head -n 1 "$tmp/stderr.txt")"
}

# A llama.c checkpoint header for a model of the given shape followed by zeros (a sparse file:
# no disk space used): dim hidden layers heads kv_heads vocab seq_len.
sparse_model() {
  local path=$1 dim=$2 hidden=$3 layers=$4 heads=$5 kv=$6 vocab=$7 seq=$8
  local head=$((dim / heads)) kvdim=$((dim * kv / heads))
  local floats=$((vocab * dim + layers * (2 * dim + 2 * dim * dim + 2 * dim * kvdim + 3 * dim * hidden) + dim + seq * head))
  node -e 'const b = Buffer.alloc(28); process.argv.slice(2).forEach((v, i) => b.writeInt32LE(+v, 4 * i));
           require("fs").writeFileSync(process.argv[1], b);' "$path" "$dim" "$hidden" "$layers" "$heads" "$kv" "$vocab" "$seq"
  truncate -s $((28 + 4 * floats)) "$path"
}

# ---- (a) allocation failure under RLIMIT_AS ------------------------------------------------
# AddressSanitizer reserves terabytes of address space for its shadow memory, so an ASan binary
# cannot even start under a 1 GiB limit: these cases run in the Release build only.
if grep -qa __asan_init "$fipsc"; then
  echo "NOT COVERED in this build: RLIMIT_AS cases (the binary is built with AddressSanitizer, which"
  echo "reserves terabytes of address space); the Release build runs them"
else
  limit_kb=$((1024 * 1024)) # 1 GiB: the CLI and OpenBLAS's buffers need about 300 MB
  # 3.4 GB of weights: the map itself fails.
  sparse_model "$tmp/huge.bin" 2048 5632 24 16 16 32000 2048
  expect_failure "load, model beyond the address space (inspect)" "out of memory: cannot map" \
    bash -c 'ulimit -v $0; exec "$@"' "$limit_kb" "$fipsc" inspect "$tmp/huge.bin"
  expect_failure "load, model beyond the address space (compress)" "out of memory: cannot map" \
    bash -c 'ulimit -v $0; exec "$@"' "$limit_kb" "$fipsc" compress "$tmp/huge.bin" -o "$tmp/out/c.safetensors" "${quick[@]}"
  # 620 MB of weights: mapped, but the copy into the model's own buffers runs out.
  sparse_model "$tmp/big.bin" 1024 2816 12 16 16 1000 256
  expect_failure "load, model mapped but not copied (compress)" "out of memory for tensor" \
    bash -c 'ulimit -v $0; exec "$@"' "$limit_kb" "$fipsc" compress "$tmp/big.bin" -o "$tmp/out/c.safetensors" "${quick[@]}"
  # Calibration of 2 GB of token ids (671 GB of rows; the largest group, streamed, 403 GB): the memory plan
  # refuses it before any work, even spilled;
  # without the plan (--max-memory none), the allocation of the token ids fails cleanly.
  expect_failure "compress, calibration beyond the memory plan" "(at most 262144000 per block, spilled to a 402.65 GB scratch file" \
    "$fipsc" compress "$model" -o "$tmp/out/c.safetensors" --calib-samples 512000 --calib-len 512 --steps 10 --quiet
  expect_failure "compress, calibration beyond the address space" "out of memory for 262144000 calibration tokens" \
    bash -c 'ulimit -v $0; exec "$@"' "$limit_kb" "$fipsc" compress "$model" -o "$tmp/out/c.safetensors" \
    --calib-samples 512000 --calib-len 512 --steps 10 --quiet --max-memory none
  # The same runs without the limit get past these points (the limit is what makes them fail).
  "$fipsc" inspect "$tmp/big.bin" >/dev/null || fail "inspect of the 620 MB model fails without a limit"
  rm -f "$tmp/huge.bin" "$tmp/big.bin"
fi

# ---- (b) file-size limit while writing, full standard output ---------------------------------
# 100 KiB: the compressed stories260K (about 600 KB) cannot be written; SIGXFSZ ignored (it stays
# ignored across exec), so write() fails with EFBIG instead of killing the process.
expect_failure "file-size limit, compressed model" "c.safetensors: write failed: File too large" \
  bash -c 'trap "" XFSZ; ulimit -f 100; exec "$@"' x "$fipsc" compress "$model" -o "$tmp/out/c.safetensors" "${quick[@]}"
expect_failure "file-size limit, dense export" "write failed: File too large" \
  bash -c 'trap "" XFSZ; ulimit -f 100; exec "$@"' x "$fipsc" convert "$model" -o "$tmp/out/hf"
# The same compression without the limit succeeds (so the limit is what failed it).
"$fipsc" compress "$model" -o "$tmp/c.safetensors" "${quick[@]}" || fail "compress without a file-size limit failed"
# Full standard output: the result would be lost, so the command fails.
expect_failure "full standard output (inspect)" "standard output" bash -c 'exec "$@" >/dev/full' x "$fipsc" inspect "$model"
expect_failure "full standard output (generate)" "fipsc generate: cannot write to standard output" \
  bash -c 'exec "$@" >/dev/full' x "$fipsc" generate "$model" -n 4 --seed 1
expect_failure "full standard output (compress table)" "cannot write to standard output" \
  bash -c 'exec "$@" >/dev/full' x "$fipsc" compress "$model" -o "$tmp/c2.safetensors" --calib-samples 2 \
  --calib-len 16 --steps 10 --batch 64
rm -f "$tmp/c2.safetensors"

# ---- (c) unreadable input ----------------------------------------------------------------------
mkdir -p "$tmp/dir.bin"
"$fipsc" convert "$model" -o "$tmp/hf" >/dev/null
rm "$tmp/hf/config.json"
mkfifo "$tmp/fifo.bin" "$tmp/fifo.txt" "$tmp/hf/config.json"
expect_failure "model is a directory" "no config.json" "$fipsc" compress "$tmp/dir.bin" -o "$tmp/out/c.safetensors" "${quick[@]}"
expect_failure "model is a FIFO" "fifo.bin: not a regular file (a FIFO)" "$fipsc" compress "$tmp/fifo.bin" -o "$tmp/out/c.safetensors" "${quick[@]}"
expect_failure "model path under a file" "stories260K.bin/x.bin: Not a directory" "$fipsc" inspect "$model/x.bin"
expect_failure "config.json is a FIFO without writer" "config.json" "$fipsc" inspect "$tmp/hf"
expect_failure "calibration corpus is a FIFO" "fifo.txt: not a regular file (a FIFO)" \
  "$fipsc" compress "$model" -o "$tmp/out/c.safetensors" --calib-corpus "$tmp/fifo.txt" --steps 10 --quiet
expect_failure "calibration corpus is a directory" "dir.bin: not a regular file (a directory)" \
  "$fipsc" compress "$model" -o "$tmp/out/c.safetensors" --calib-corpus "$tmp/dir.bin" --steps 10 --quiet
cp "$model" "$tmp/locked.bin" && chmod 000 "$tmp/locked.bin"
if [ "$(id -u)" = 0 ]; then
  echo "NOT COVERED as root: a file without read permission (root reads it regardless)"
else
  expect_failure "model without read permission" "Permission denied" "$fipsc" inspect "$tmp/locked.bin"
fi

# ---- (d) output directory missing or not a directory -------------------------------------------
expect_failure "missing output directory" "cannot create a file in directory '$tmp/out/no-such-dir'" \
  "$fipsc" compress "$model" -o "$tmp/out/no-such-dir/c.safetensors" "${quick[@]}"
mkdir "$tmp/existing-dir"
expect_failure "output is a directory" "existing-dir: is a directory (the output must be a file name)" \
  "$fipsc" compress "$model" -o "$tmp/existing-dir" "${quick[@]}"
[ -z "$(ls -A "$tmp/existing-dir")" ] && [ -z "$(ls "$tmp" | grep existing-dir.tmp)" ] || fail "output is a directory: left files behind"
expect_failure "output under a regular file" "Not a directory" \
  "$fipsc" compress "$model" -o "$model/c.safetensors" "${quick[@]}"
expect_failure "report in a missing directory" "cannot create a file in directory" \
  "$fipsc" compress "$model" -o "$tmp/out/c.safetensors" --report "$tmp/out/none/r.json" "${quick[@]}"

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "test_resource_failures: all checks passed"
