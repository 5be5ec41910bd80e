#!/usr/bin/env bash
# GPT-2 through the command line, on the small random-weight checkpoint of tests/data/gpt2 (whose
# forward test_gpt2 checks against PyTorch): inspect, sample, compress its MLPs with FiPS and with
# a baseline at the same budget, evaluate against the original, generate, and export the
# compressed model back to a Hugging Face directory that gives the same perplexity.
set -uo pipefail
fipsc=$FIPSC_CLI
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_gpt2_cli
model=$FIPSC_SOURCE_DIR/tests/data/gpt2/tiny

expect 0 "$fipsc" inspect "$model"
expect_out "architecture GPT2LMHeadModel: dim 48, hidden 192, 3 layers, 4 heads, vocab 97, 32 positions"
expect_out "parameters: mlp 55296, attention 28224, embeddings 10848"
expect_out "transformer.h.0.mlp.c_fc.weight *F32 *\[48, 192\]" # as stored: Conv1D [in, out]

expect 0 "$fipsc" sample "$model" -o "$tmp/corpus.bin" --n 16 --len 32 --seed 5
expect 0 "$fipsc" compress "$model" -o "$tmp/fips.safetensors" --budget 0.5 --steps 300 --calib-samples 32 \
  --calib-len 32 --report "$tmp/fips.json" --quiet
expect 0 "$fipsc" compress "$model" -o "$tmp/svd.safetensors" --method svd --budget 0.5 --calib-samples 32 \
  --calib-len 32 --quiet
expect 0 "$fipsc" inspect "$tmp/fips.safetensors"
expect_out "format: fipsc-compressed"
expect_out "compression: 1 groups"

# Against the original on a corpus it sampled: FiPS at half the MLP parameters stays closer to it
# than per-matrix SVD at the same budget (measured: mean KL 0.124 vs 1.42 nats per token).
kl() { "$fipsc" eval "$1" --corpus "$tmp/corpus.bin" --ref "$model" --json | sed -n 's/.*"kl_mean":[[:space:]]*\([0-9.e+-]*\).*/\1/p' | head -n 1; }
kl_fips=$(kl "$tmp/fips.safetensors")
kl_svd=$(kl "$tmp/svd.safetensors")
echo "KL(original || fips) = $kl_fips, KL(original || svd) = $kl_svd"
awk -v f="$kl_fips" -v s="$kl_svd" 'BEGIN { exit !(f > 0 && 4 * f < s && f < 0.3) }' ||
  fail "FiPS KL $kl_fips is not a quarter of the SVD baseline's $kl_svd (and below 0.3)"

expect 0 "$fipsc" generate "$tmp/fips.safetensors" -n 8 --temperature 0
[ "$(wc -w <"$tmp/out")" -eq 9 ] || fail "generate printed $(cat "$tmp/out")"

# The dense export loads as a GPT-2 again and scores as the compressed model does.
expect 0 "$fipsc" export "$tmp/fips.safetensors" --dense -o "$tmp/exported"
expect 0 "$fipsc" inspect "$tmp/exported"
expect_out "architecture GPT2LMHeadModel"
ppl() { "$fipsc" eval "$1" --corpus "$tmp/corpus.bin" --json | sed -n 's/.*"perplexity":[[:space:]]*\([0-9.e+-]*\).*/\1/p' | head -n 1; }
p_c=$(ppl "$tmp/fips.safetensors")
p_e=$(ppl "$tmp/exported")
awk -v a="$p_c" -v b="$p_e" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a > 0 && d <= 1e-4 * a) }' ||
  fail "exported perplexity $p_e differs from the compressed model's $p_c"
test_end
