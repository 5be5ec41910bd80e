#!/usr/bin/env bash
# Command-line conventions: --help on every command, --version, exit codes 0 ok / 1 failure /
# 2 usage error, and errors on stderr as "fipsc <command>: ..." naming the file.
set -uo pipefail
fipsc=$FIPSC_CLI
model=$FIPSC_SOURCE_DIR/models/stories260K.bin
tmp=$FIPSC_BINARY_DIR/test-tmp/test_cli_usage
rm -rf "$tmp" && mkdir -p "$tmp"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# run EXPECTED_RC NEEDLE_IN_STDERR ARGS...: runs fipsc, checks the exit code and stderr
run() {
  local want=$1 needle=$2
  shift 2
  "$fipsc" "$@" >"$tmp/out" 2>"$tmp/err"
  local rc=$?
  [ $rc -eq "$want" ] || fail "fipsc $* exited $rc, expected $want (stderr: $(cat "$tmp/err"))"
  if [ -n "$needle" ]; then
    grep -qF -- "$needle" "$tmp/err" || fail "fipsc $*: stderr lacks '$needle': $(cat "$tmp/err")"
  fi
}

run 0 "" --version
grep -qE '^fipsc [0-9]+\.[0-9]+\.[0-9]+$' "$tmp/out" || fail "--version printed '$(cat "$tmp/out")'"
run 0 "" --help
grep -q "convert" "$tmp/out" && grep -q "inspect" "$tmp/out" || fail "--help does not list the commands"
# FIPSC_ISA: the portable level always exists; an unknown name is a usage error
FIPSC_ISA=portable run 0 "" --version
grep -q "^fipsc kernels: portable " "$tmp/out" || fail "FIPSC_ISA=portable: --version printed '$(cat "$tmp/out")'"
FIPSC_ISA=sse9 run 2 "fipsc: FIPSC_ISA: unknown instruction set 'sse9'" --version
run 2 "" # no command
run 2 "fipsc: unknown command 'frobnicate'" frobnicate

for cmd in inspect convert; do
  run 0 "" "$cmd" --help
  grep -q "^Usage: fipsc $cmd" "$tmp/out" || fail "fipsc $cmd --help: no usage line"
  [ -s "$tmp/err" ] && fail "fipsc $cmd --help wrote to stderr"
  run 2 "fipsc $cmd: unknown option '--bogus'" "$cmd" --bogus "$model"
  grep -qF "Try 'fipsc $cmd --help'." "$tmp/err" || fail "fipsc $cmd --bogus: no hint"
  run 2 "fipsc $cmd: missing" "$cmd"
done

# inspect
run 2 "fipsc inspect: expects exactly one PATH" inspect "$model" "$model"
run 1 "fipsc inspect: $tmp/absent.bin:" inspect "$tmp/absent.bin"
printf 'GGUF' >"$tmp/model.gguf"
run 1 "fipsc inspect: $tmp/model.gguf: truncated GGUF file: the version needs 4 bytes at offset 4" inspect "$tmp/model.gguf"
printf 'PK\003\004' >"$tmp/model.zip"
run 1 "fipsc inspect: $tmp/model.zip: unknown checkpoint format" inspect "$tmp/model.zip"
head -c 1000 "$model" >"$tmp/truncated.bin"
run 1 "fipsc inspect: $tmp/truncated.bin: truncated" inspect "$tmp/truncated.bin"

# convert
run 2 "fipsc convert: missing -o DIR" convert "$model"
run 2 "fipsc convert: option '-o' needs an argument" convert "$model" -o
run 2 "fipsc convert: option '--output' needs an argument" convert "$model" --output
run 2 "fipsc convert: expects exactly one MODEL" convert "$model" "$model" -o "$tmp/x"
run 1 "fipsc convert: $tmp/absent.bin:" convert "$tmp/absent.bin" -o "$tmp/x"
[ -e "$tmp/x" ] && fail "a failed convert left $tmp/x behind"
printf 'x' >"$tmp/a-file"
run 1 "fipsc convert: $tmp/a-file: exists and is not a directory" convert "$model" -o "$tmp/a-file"
run 1 "fipsc convert: $tmp/no/such/parent" convert "$model" -o "$tmp/no/such/parent/out"
run 0 "" convert "$model" -o "$tmp/ok"
grep -qF "wrote $tmp/ok" "$tmp/out" || fail "convert did not say what it wrote"

if [ $failures -ne 0 ]; then echo "test_cli_usage: $failures failures"; exit 1; fi
echo "test_cli_usage: ok"
