#!/usr/bin/env bash
# fipsc generate through the command line: the same tokens for OMP_NUM_THREADS 1 and 2 (and any
# --threads), temperature 0 = a tiny top-p = greedy, seeds matter, the prompt is echoed first,
# EOS stops unless --ignore-eos, and usage errors.
set -euo pipefail
fipsc=$FIPSC_CLI
model=$FIPSC_SOURCE_DIR/models/stories260K.bin
tmp=$FIPSC_BINARY_DIR/test-tmp/test_cli_generate
rm -rf "$tmp" && mkdir -p "$tmp" && cd "$tmp"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

a=$(OMP_NUM_THREADS=1 "$fipsc" generate "$model" --prompt-tokens "1 403 407" -n 100 --seed 7 --temperature 1 --top-p 0.9 --ignore-eos)
b=$(OMP_NUM_THREADS=2 "$fipsc" generate "$model" --prompt-tokens "1 403 407" -n 100 --seed 7 --temperature 1 --top-p 0.9 --ignore-eos)
c=$("$fipsc" generate "$model" --prompt-tokens "1,403,407" -n 100 --seed 7 --temperature 1 --top-p 0.9 --ignore-eos --threads 1)
[ "$a" = "$b" ] || fail "OMP_NUM_THREADS 1 and 2 differ:
$a
$b"
[ "$a" = "$c" ] || fail "--threads 1 differs"
[ "$(echo "$a" | wc -w)" = 103 ] || fail "expected 3 + 100 ids, got $(echo "$a" | wc -w)"
case "$a" in "1 403 407 "*) ;; *) fail "the prompt is not printed first: $a" ;; esac
d=$("$fipsc" generate "$model" --prompt-tokens "1 403 407" -n 100 --seed 8 --temperature 1 --top-p 0.9 --ignore-eos)
[ "$a" != "$d" ] || fail "seeds 7 and 8 gave the same tokens"

g0=$("$fipsc" generate "$model" --prompt-tokens "1 403" -n 50 --temperature 0 --ignore-eos --seed 1)
g1=$("$fipsc" generate "$model" --prompt-tokens "1 403" -n 50 --temperature 0 --ignore-eos --seed 2)
g2=$("$fipsc" generate "$model" --prompt-tokens "1 403" -n 50 --top-p 1e-9 --ignore-eos --seed 3)
[ "$g0" = "$g1" ] || fail "temperature 0 depends on the seed"
[ "$g0" = "$g2" ] || fail "tiny top-p differs from temperature 0:
$g0
$g2"

# Default prompt: BOS. Without --ignore-eos a generation that samples EOS (2) ends there.
found=0
for seed in $(seq 1 40); do
  out=$("$fipsc" generate "$model" -n 300 --seed "$seed" --top-p 1)
  case "$out" in 1\ *) ;; *) fail "default prompt is not BOS: $out" ;; esac
  n=$(echo "$out" | wc -w)
  if [ "$n" -lt 301 ]; then
    [ "$(echo "$out" | awk '{print $NF}')" = 2 ] || fail "stopped early without EOS: $out"
    [ "$(echo "$out" | tr ' ' '\n' | grep -cx 2)" = 1 ] || fail "more than one EOS: $out"
    found=1
    break
  fi
done
[ $found = 1 ] || fail "no seed of 40 produced EOS within 300 tokens"

set +e
"$fipsc" generate "$model" --prompt-tokens "1 x" 2>/dev/null; [ $? -eq 2 ] || fail "bad prompt id should exit 2"
"$fipsc" generate "$model" --prompt-tokens "1 9999" -n 3 2>err.txt; rc=$?
[ $rc -eq 2 ] || fail "prompt id 9999 exited $rc"
grep -qF "fipsc generate: token id 9999 (sequence 0, position 1) is outside the vocabulary [0, 512)" err.txt || fail "message: $(cat err.txt)"
"$fipsc" generate "$model" --top-p 0 2>/dev/null; [ $? -eq 2 ] || fail "--top-p 0 should exit 2"
"$fipsc" generate "$model" --temperature -1 2>/dev/null; [ $? -eq 2 ] || fail "--temperature -1 should exit 2"
"$fipsc" generate "$model" -n 600 2>err.txt; [ $? -eq 2 ] || fail "-n 600 should exit 2"
grep -q "context is 512" err.txt || fail "message: $(cat err.txt)"
"$fipsc" generate 2>/dev/null; [ $? -eq 2 ] || fail "missing MODEL should exit 2"
"$fipsc" generate /nonexistent.bin 2>/dev/null; [ $? -eq 1 ] || fail "missing model file should exit 1"
set -e
"$fipsc" generate --help | grep -q "Usage: fipsc generate" || fail "--help"

if [ $failures -ne 0 ]; then echo "test_cli_generate: $failures failures"; exit 1; fi
echo "test_cli_generate: ok"
