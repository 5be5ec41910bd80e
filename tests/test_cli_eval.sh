#!/usr/bin/env bash
# fipsc sample + eval through the command line. The must-show: a corpus sampled from stories260K
# (4 × 64, seed 1) evaluated against the same model reports KL 0 and top-1 agreement 1. Also: the
# corpus is the same whatever the thread count and is written atomically, the text corpus form,
# a perturbed reference gives KL > 0, clear errors for bad ids and bad options.
set -euo pipefail
fipsc=$FIPSC_CLI
model=$FIPSC_SOURCE_DIR/models/stories260K.bin
tmp=$FIPSC_BINARY_DIR/test-tmp/test_cli_eval
rm -rf "$tmp" && mkdir -p "$tmp"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
expect_in() { grep -qF -- "$2" "$1" || fail "$1 does not contain '$2': $(head -c 800 "$1")"; }
# check_json FILE 'EXPR' ...: each JavaScript expression over the parsed object `j` must be true
# (one node start per file: node takes a good fraction of a second to start).
check_json() {
  local file=$1; shift
  node -e "
const j = JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'));
let bad = 0;
for (const e of process.argv.slice(2)) if (!eval(e)) { console.error('FAIL: ' + process.argv[1] + ': ' + e + ' is false in ' + JSON.stringify(j)); bad++; }
process.exit(bad ? 1 : 0);" "$file" "$@" || failures=$((failures + 1))
}

# The must-show.
cd "$tmp"
"$fipsc" sample "$model" --n 4 --len 64 --seed 1 -o c.tok >sample.txt || fail "sample exited $?"
expect_in sample.txt "wrote c.tok: 4 sequences × 64 tokens (vocabulary 512, seed 1)"
[ "$(stat -c %s c.tok)" = $((24 + 4 * 4 * 64)) ] || fail "c.tok has $(stat -c %s c.tok) bytes"
[ "$(head -c 8 c.tok)" = FIPSCTOK ] || fail "c.tok does not start with the magic"
ls -a | grep -q 'tmp' && fail "temporary file left behind: $(ls -a)"
"$fipsc" eval "$model" --corpus c.tok --ref "$model" --json >eval.json || fail "eval --json exited $?"
cat eval.json
check_json eval.json 'j.kl_mean === 0' 'j.kl_p99 === 0' 'j.kl_max === 0' 'j.top1_agreement === 1' \
  'j.delta_perplexity === 0' 'j.scored_tokens === 4 * 63' 'j.sequences === 4' \
  'j.perplexity > 1 && j.perplexity < 512 && j.perplexity === j.ref_perplexity'
grep -q '"kl_mean":[[:space:]]*0,' eval.json || fail "eval.json does not print kl_mean as 0"
grep -q '"top1_agreement":[[:space:]]*1[[:space:]]*$' eval.json || fail "eval.json does not print top1_agreement as 1"

# The corpus does not depend on the thread count.
OMP_NUM_THREADS=1 "$fipsc" sample "$model" --n 4 --len 64 --seed 1 -o c1.tok >/dev/null || fail "sample (1 thread) exited $?"
"$fipsc" sample "$model" --n 4 --len 64 --seed 1 -o c2.tok --threads 2 >/dev/null || fail "sample (2 threads) exited $?"
cmp -s c.tok c1.tok || fail "the corpus differs with OMP_NUM_THREADS=1"
cmp -s c.tok c2.tok || fail "the corpus differs with --threads 2"
"$fipsc" sample "$model" --n 4 --len 64 --seed 2 -o c3.tok >/dev/null
cmp -s c.tok c3.tok && fail "seeds 1 and 2 gave the same corpus"

# Perplexity alone, as a table, and the same number through a text corpus with those ids.
"$fipsc" eval "$model" --corpus c.tok >table.txt || fail "eval exited $?"
expect_in table.txt "4 sequences, 252 scored tokens"
ppl=$(node -e "console.log(JSON.parse(require('fs').readFileSync('eval.json', 'utf8')).perplexity.toFixed(6))")
expect_in table.txt "perplexity       $ppl"
node -e "
const b = require('fs').readFileSync(process.argv[1]);
const n = b.readUInt32LE(12), len = b.readUInt32LE(16); let out = '';
for (let s = 0; s < n; s++) { const ids = [];
  for (let i = 0; i < len; i++) ids.push(b.readUInt32LE(24 + 4 * (s * len + i)));
  out += ids.join(' ') + '\n'; }
require('fs').writeFileSync(process.argv[2], out);" c.tok c.txt
OMP_NUM_THREADS=1 "$fipsc" eval "$model" --corpus c.txt --json --threads 1 >text.json || fail "eval of the text corpus exited $?"
check_json text.json "j.perplexity.toFixed(6) === '$ppl'"

# Against a different reference (the model with a perturbed MLP, via llama2.c bytes): KL > 0.
node -e "
const fs = require('fs'); const b = Buffer.from(fs.readFileSync(process.argv[1]));
// w1 (gate) of layer 0 starts after the header, embeddings, rms_att, wq, wk, wv, wo, rms_ffn.
const dim = 64, kv = 32, L = 5, V = 512, hid = 172;
let off = 28 + 4 * (V * dim + L * dim + L * dim * dim + 2 * L * kv * dim + L * dim * dim + L * dim);
for (let i = 0; i < hid * dim; i += 7) b.writeFloatLE(b.readFloatLE(off + 4 * i) * 1.5, off + 4 * i);
fs.writeFileSync(process.argv[2], b);" "$model" perturbed.bin
"$fipsc" eval perturbed.bin --corpus c.tok --ref "$model" --json >kl.json || fail "eval vs perturbed exited $?"
check_json kl.json 'j.kl_mean > 0' 'j.kl_p99 >= j.kl_median' 'j.kl_max >= j.kl_p99' 'j.top1_agreement < 1' \
  'Math.abs(j.delta_perplexity - (j.perplexity - j.ref_perplexity)) < 1e-9'
"$fipsc" eval perturbed.bin --corpus c.tok --ref "$model" >kl.txt || fail "eval vs perturbed (table) exited $?"
expect_in kl.txt "KL(ref||model)   mean"
expect_in kl.txt "top-1 agreement"

# Errors: an id outside the vocabulary, a missing corpus, usage.
printf '1 2 3\n1 600 2\n' >bad.txt
set +e
"$fipsc" eval "$model" --corpus bad.txt 2>err.txt; rc=$?
[ $rc -eq 2 ] || fail "eval with id 600 exited $rc, expected 2"
expect_in err.txt "fipsc eval: token corpus sequence 1, position 1: token id 600 is not below the vocabulary size 512 of the model"
"$fipsc" eval "$model" --corpus missing.tok 2>err.txt; rc=$?
[ $rc -eq 1 ] || fail "eval with a missing corpus exited $rc, expected 1"
expect_in err.txt "missing.tok"
"$fipsc" eval "$FIPSC_SHARED_DIR/models/deit-mnist" --corpus c.tok 2>err.txt; rc=$?
[ $rc -eq 1 ] || fail "eval of an image classifier exited $rc, expected 1"
expect_in err.txt "is not a language model (architecture 'DeiTForImageClassificationWithTeacher')"
"$fipsc" sample "$FIPSC_SHARED_DIR/models/deit-mnist" --n 1 --len 8 -o v.tok 2>err.txt; rc=$?
[ $rc -eq 1 ] || fail "sample from an image classifier exited $rc, expected 1"
expect_in err.txt "is not a language model"
"$fipsc" eval "$model" 2>err.txt; rc=$?
[ $rc -eq 2 ] || fail "eval without --corpus exited $rc, expected 2"
expect_in err.txt "give exactly one of --corpus FILE and --text FILE"
"$fipsc" eval "$model" --corpus c.tok --bogus 2>err.txt; rc=$?
[ $rc -eq 2 ] || fail "eval --bogus exited $rc, expected 2"
"$fipsc" sample "$model" --n 2 --len 600 -o x.tok 2>err.txt; rc=$?
[ $rc -eq 2 ] || fail "sample --len 600 exited $rc, expected 2"
expect_in err.txt "context is 512"
[ -e x.tok ] && fail "a failed sample left x.tok"
"$fipsc" sample "$model" --n 2 2>err.txt; rc=$?
[ $rc -eq 2 ] || fail "sample without -o exited $rc, expected 2"
"$fipsc" sample "$model" --n 0 -o y.tok 2>err.txt; rc=$?
[ $rc -eq 2 ] || fail "sample --n 0 exited $rc, expected 2"
"$fipsc" sample "$model" --n 2 --len 8 -o /nonexistent-dir/z.tok 2>err.txt; rc=$?
[ $rc -eq 1 ] || fail "sample into a missing directory exited $rc, expected 1"
set -e
"$fipsc" eval --help | grep -q "Usage: fipsc eval" || fail "eval --help"
"$fipsc" sample --help | grep -q "Usage: fipsc sample" || fail "sample --help"

if [ $failures -ne 0 ]; then echo "test_cli_eval: $failures failures"; exit 1; fi
echo "test_cli_eval: ok"
