#!/usr/bin/env bash
# fipsc against llama.cpp on the same GGUF files and threads: prefill and decode tokens/s of a
# synthetic Llama-3.2-1B-shaped model (random weights, bench/synthetic_llama.c) in F32 and Q8_0.
# fipsc reads the GGUF and computes in float32 (Q8_0 is dequantized on load); llama.cpp (through
# node-llama-cpp, bench/llamacpp-speed.mjs) computes on the stored type. Prints one line per
# program, model and thread count, and the ratio fipsc / llama.cpp.
#
#   bash bench/vs-llamacpp.sh [WORKDIR] [PROMPT] [DECODE]     (defaults: /tmp/fipsc-vs-llamacpp 128 16)
#
# Needs build/release (bench_lm_speed, synthetic_llama) and scripts/fetch-models (node-llama-cpp);
# ~7 GB of disk in WORKDIR and ~6 GB of memory. Run it on an otherwise idle machine.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work=${1:-/tmp/fipsc-vs-llamacpp}
prompt=${2:-128}
decode=${3:-16}
mkdir -p "$work"
for type in f32 q8_0; do
  [ -f "$work/1b-$type.gguf" ] || "$root/build/release/synthetic_llama" "$work/1b-$type.gguf" --shape 1b --type "$type"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2)"
for type in f32 q8_0; do
  for threads in 1 2; do
    f=$(OMP_WAIT_POLICY=passive "$root/build/release/bench_lm_speed" "$work/1b-$type.gguf" --prompt "$prompt" \
      --decode "$decode" --threads "$threads")
    l=$(node "$root/bench/llamacpp-speed.mjs" "$work/1b-$type.gguf" "$prompt" "$decode" "$threads")
    echo "$type, $threads thread(s): $f"
    echo "$type, $threads thread(s): $l"
    awk -v f="$f" -v l="$l" -v t="$type" -v n="$threads" 'BEGIN {
      split(f, a, " "); split(l, b, " ");
      printf "%s, %s thread(s): fipsc / llama.cpp  prefill %.2fx  decode %.2fx\n", t, n, a[5] / b[5], a[10] / b[10] }'
  done
done
