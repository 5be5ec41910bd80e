#!/usr/bin/env bash
# Quality per byte on stories260K: llama.cpp's own formats (F16, BF16, Q8_0, Q4_0) beside FiPS at
# several budgets, and FiPS followed by F16/Q8_0 GGUF export. KL(original ‖ model) per token on
# 64 × 256 tokens sampled from the original (seed 1), two ways: fipsc evaluating the file
# (float32 activations, dequantized weights: `fipsc eval`) and llama.cpp running it
# (tests/llamacpp/probs.mjs + llamacpp_agree against the original). MLP bytes: the file's
# ffn_gate/up/down tensors (GGUF), or what fipsc's compressed file stores for the MLPs.
#
#   bash bench/gguf-quality-per-byte.sh [WORKDIR]      (default /tmp/fipsc-qpb; ~3 min on 2 cores)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
work=${1:-/tmp/fipsc-qpb}
fipsc=$root/build/release/fipsc
agree=$root/build/release/llamacpp_agree
model=$root/models/stories260K.bin
mkdir -p "$work" && cd "$work"
"$fipsc" sample "$model" --n 64 --len 256 --seed 1 -o eval.tok >/dev/null
"$fipsc" sample "$model" --n 64 --len 256 --seed 2 -o calib.tok >/dev/null
for t in f32 f16 bf16 q8_0 q4_0; do "$fipsc" export "$model" --gguf --type "$t" -o "s-$t.gguf" --force >/dev/null; done
for b in 0.5 0.35 0.25; do
  "$fipsc" compress "$model" -o "fips-$b.safetensors" --groups 0-1,2-4 --calib-corpus calib.tok --seed 1 \
    --threads 2 --method fips --budget "$b" --sparsity 0.75 --adam-moments f32 --quiet
  for t in f16 q8_0; do "$fipsc" export "fips-$b.safetensors" --gguf --type "$t" -o "fips-$b-$t.gguf" --force >/dev/null; done
done
json() { /usr/bin/env node -e "const d=JSON.parse(require('fs').readFileSync(0,'utf8')); console.log($1)"; }
printf '| model | MLP bytes | of F32 | of BF16 | KL (fipsc) | top-1 (fipsc) | KL (llama.cpp) |\n|---|---:|---:|---:|---:|---:|---:|\n'
row() { # name file bytes
  local e l
  e=$("$fipsc" eval "$2" --ref "$model" --corpus eval.tok --json | json 'd.kl_mean.toPrecision(3)+" "+(100*d.top1_agreement).toFixed(1)+"%"')
  l="—"
  if [[ $2 == *.gguf ]]; then
    node "$root/tests/llamacpp/probs.mjs" "$2" eval.tok probs.f32 >/dev/null
    l=$("$agree" "$model" eval.tok probs.f32 100 1 | sed 's/.*mean KL \([^ ]*\) .*/\1/')
  fi
  awk -v n="$1" -v b="$3" -v kl="${e% *}" -v t1="${e#* }" -v l="$l" \
    'BEGIN { printf "| %s | %d | %.1f%% | %.1f%% | %s | %s | %s |\n", n, b, 100 * b / 660480, 100 * b / 330240, kl, t1, l }'
}
gguf_mlp() { "$fipsc" inspect "$1" --json | json 'd.tensors.filter(t=>/\.ffn_(gate|up|down)\./.test(t.name)).reduce((s,t)=>s+t.bytes,0)'; }
fips_mlp() { "$fipsc" inspect "$1" | sed -n 's/.*MLP bytes [0-9]* dense -> \([0-9]*\) stored.*/\1/p'; }
for t in f32 f16 bf16 q8_0 q4_0; do row "original, GGUF $t" "s-$t.gguf" "$(gguf_mlp "s-$t.gguf")"; done
for b in 0.5 0.35 0.25; do
  row "FiPS budget $b (fipsc file)" "fips-$b.safetensors" "$(fips_mlp "fips-$b.safetensors")"
  for t in f16 q8_0; do row "FiPS budget $b, GGUF $t" "fips-$b-$t.gguf" "$(gguf_mlp "fips-$b-$t.gguf")"; done
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
