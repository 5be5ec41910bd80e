#!/usr/bin/env bash
# fipsc's tokenizer against the JavaScript client it is checked against (@lenml/tokenizers 3.7.2)
# on the four real tokenizers of scripts/fetch-models: load time and encode/decode megabytes per
# second on one thread, and the ratios fipsc / client. Two texts: the shipped Moby-Dick excerpts
# (English prose, 101 KB) and the 2,050 golden strings (code, numbers, many scripts, emoji;
# 201 KB), each encoded as one text.
#
#   bash bench/tokenizer-vs-js.sh [SECONDS]      (default 3 s per measurement)
#
# Needs build/release (bench_tokenizer), scripts/fetch-models, and `npm ci` in tests/tokenizers
# (the client). The client caches BPE results of words it has seen (an LRU of 10,000), fipsc
# caches nothing: the timed loop encodes the same text again and again, which favours the client.
# Run it on an otherwise idle machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
seconds=${1:-3}
cache="${FIPSC_MODEL_CACHE:-$root/models/cache}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat "$root"/data/text/moby-dick-ch01-03.txt "$root"/data/text/moby-dick-ch04-09.txt >"$work/prose.txt"
node -e '
const s = require(process.argv[1]).strings_b64;
process.stdout.write(Buffer.concat(s.map((b) => Buffer.concat([Buffer.from(b, "base64"), Buffer.from("\n")]))));
' "$root/tests/tokenizers/strings.json" >"$work/mixed.txt"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
for name in llama3 llama2 gemma3 qwen3; do
  dir="$cache/lenml-tokenizer-$name-3.7.2/models"
  for text in prose mixed; do
    f=$(OMP_NUM_THREADS=1 "$root/build/release/bench_tokenizer" "$dir" "$work/$text.txt" "$seconds")
    j=$(node "$root/bench/tokenizer-speed.mjs" "$dir" "$work/$text.txt" "$seconds")
    echo "$name $text fipsc:  $f"
    echo "$name $text client: $j"
    awk -v f="$f" -v j="$j" -v n="$name" -v t="$text" 'BEGIN {
      split(f, a, " "); split(j, b, " ");
      printf "%s %s: fipsc / client  load %.2fx faster, encode %.2fx, decode %.2fx\n", n, t, b[2] / a[2], a[5] / b[5], a[8] / b[8] }'
  done
done
