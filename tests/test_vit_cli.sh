#!/usr/bin/env bash
# fipsc classify and fipsc eval-images on the shipped DeiT-MNIST model: the top classes of
# hold-out images (text and JSON) agree with the PyTorch reference logits, the hold-out top-1
# equals the one recorded in reference-logits.json, and usage errors / bad input exit 2 / 1 with
# "fipsc <command>: ..." on stderr.
set -uo pipefail
fipsc=$FIPSC_CLI
deit=$FIPSC_SHARED_DIR/models/deit-mnist
holdout=$FIPSC_SHARED_DIR/data/deit-mnist-holdout
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_vit_cli

# --- classify, text: image 0000 is a 2, image 0001 a 6 (reference-logits.json) ---------------
expect 0 "$fipsc" classify "$deit" "$holdout/0000.png" "$holdout/0001.png"
[ -s "$tmp/err" ] && fail "classify wrote to stderr: $(cat "$tmp/err")"
[ "$(grep -c '^  [1-5]\. ' "$tmp/out")" = 10 ] || fail "classify: expected 5 ranks per image: $(cat "$tmp/out")"
sed -n 2p "$tmp/out" | grep -qE '^  1\. 2 +class 2 +p 0\.9[0-9]+  logit 4\.90[0-9]+$' || fail "classify 0000: $(sed -n 1,3p "$tmp/out")"
sed -n 8p "$tmp/out" | grep -qE '^  1\. 6 +class 6 ' || fail "classify 0001: $(sed -n 7,9p "$tmp/out")"
expect 0 "$fipsc" classify --top 3 "$deit" "$holdout/0002.png"
[ "$(grep -c '^  [1-5]\. ' "$tmp/out")" = 3 ] || fail "--top 3: $(cat "$tmp/out")"

# --- classify --json: all ten logits of the eight reference images within 1e-4 --------------
images=()
for i in 0 1 2 3 4 5 6 7; do images+=("$holdout/000$i.png"); done
expect 0 "$fipsc" classify --json --top 10 --batch 3 "$deit" "${images[@]}"
node - "$tmp/out" "$deit/reference-logits.json" <<'JS' || fail "classify --json disagrees with the reference logits"
const fs = require('fs');
const got = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const ref = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
let worst = 0;
ref.images.forEach((name, i) => {
  const entry = got.images[i];
  if (!entry.image.endsWith('/' + name)) throw new Error(`image ${i} is ${entry.image}`);
  if (entry.top.length !== 10) throw new Error(`image ${i}: ${entry.top.length} ranks`);
  let total = 0;
  entry.top.forEach((t, r) => {
    if (t.rank !== r + 1 || t.label !== String(t.class)) throw new Error(`bad rank entry ${JSON.stringify(t)}`);
    worst = Math.max(worst, Math.abs(t.logit - ref.logits[i][t.class]));
    total += t.probability;
    if (r > 0 && t.logit > entry.top[r - 1].logit) throw new Error('ranks out of order');
  });
  if (Math.abs(total - 1) > 1e-5) throw new Error(`probabilities sum to ${total}`);
});
if (worst > 1e-4) throw new Error(`max |logit - reference| = ${worst}`);
JS

# --- eval-images: the hold-out top-1 of reference-logits.json ------------------------------
expect 0 "$fipsc" eval-images "$deit" --dir "$holdout" --labels "$holdout/labels.tsv" --json
node - "$tmp/out" "$deit/reference-logits.json" <<'JS' || fail "eval-images: $(cat "$tmp/out")"
const fs = require('fs');
const got = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
const ref = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
if (got.images !== 2000) throw new Error(`images ${got.images}`);
if (Math.fround(got.top1) !== Math.fround(ref.holdout_acc)) throw new Error(`top1 ${got.top1} vs ${ref.holdout_acc}`);
if (got.top1_correct !== Math.round(got.top1 * 2000) || got.top5 < got.top1) throw new Error('inconsistent counts');
JS
expect 0 "$fipsc" eval-images "$deit" -d "$holdout" -l "$holdout/labels.tsv" --limit 50
grep -qE '^images 50  top-1 [01]\.[0-9]{4} \([0-9]+\)  top-5 [01]\.[0-9]{4} \([0-9]+\)$' "$tmp/out" || fail "eval text: $(cat "$tmp/out")"

# --- usage errors: exit 2 --------------------------------------------------------------------
expect 0 "$fipsc" classify --help
grep -q '^Usage: fipsc classify MODEL IMAGE' "$tmp/out" || fail "classify --help"
expect 0 "$fipsc" eval-images --help
grep -q '^Usage: fipsc eval-images MODEL --dir DIR --labels FILE' "$tmp/out" || fail "eval-images --help"
expect 2 "$fipsc" classify
expect 2 "$fipsc" classify "$deit"
grep -q '^fipsc classify: missing IMAGE' "$tmp/err" || fail "classify without image: $(cat "$tmp/err")"
expect 2 "$fipsc" classify --top 0 "$deit" "$holdout/0000.png"
expect 2 "$fipsc" classify --frobnicate "$deit" "$holdout/0000.png"
expect 2 "$fipsc" eval-images "$deit" --labels "$holdout/labels.tsv"
grep -q '^fipsc eval-images: missing --dir' "$tmp/err" || fail "eval without --dir: $(cat "$tmp/err")"
expect 2 "$fipsc" eval-images "$deit" --dir "$holdout"
expect 2 "$fipsc" eval-images "$deit" --dir "$holdout" --labels "$holdout/labels.tsv" --limit -3

# --- bad input: exit 1 with a message naming the file -----------------------------------------
expect 1 "$fipsc" classify "$deit" "$tmp/nope.png"
grep -q "^fipsc classify: .*nope.png" "$tmp/err" || fail "missing image: $(cat "$tmp/err")"
head -c 100 "$holdout/0000.png" >"$tmp/cut.png"
expect 1 "$fipsc" classify "$deit" "$holdout/0000.png" "$tmp/cut.png"
grep -q "^fipsc classify: .*cut.png: corrupt PNG" "$tmp/err" || fail "corrupt PNG: $(cat "$tmp/err")"
printf '0000.png\t2\n0001.png\tseven\n' >"$tmp/labels.tsv"
expect 1 "$fipsc" eval-images "$deit" --dir "$holdout" --labels "$tmp/labels.tsv"
grep -q "^fipsc eval-images: .*labels.tsv:2: class 'seven'" "$tmp/err" || fail "bad label: $(cat "$tmp/err")"
printf '0000.png\t2\nmissing.png\t1\n' >"$tmp/labels.tsv"
expect 1 "$fipsc" eval-images "$deit" --dir "$holdout" --labels "$tmp/labels.tsv"
grep -q "^fipsc eval-images: .*missing.png" "$tmp/err" || fail "missing listed image: $(cat "$tmp/err")"
if [ -f "$FIPSC_SOURCE_DIR/models/stories260K.bin" ]; then
  expect 1 "$fipsc" classify "$FIPSC_SOURCE_DIR/models/stories260K.bin" "$holdout/0000.png"
  grep -q "not an image classifier" "$tmp/err" || fail "Llama model: $(cat "$tmp/err")"
fi
mkdir -p "$tmp/unknown"
printf '{"architectures": ["ViTForMaskedImageModeling"], "model_type": "vit"}' >"$tmp/unknown/config.json"
expect 1 "$fipsc" classify "$tmp/unknown" "$holdout/0000.png"
grep -q "ViTForMaskedImageModeling' is not supported" "$tmp/err" || fail "unknown architecture: $(cat "$tmp/err")"

# no llama.cpp architecture for ViTs: refused before anything is written
expect 1 "$fipsc" export "$deit" --gguf -o "$tmp/deit.gguf"
expect_err "cannot write this architecture as GGUF"
[ ! -e "$tmp/deit.gguf" ] || fail "a refused GGUF export left a file"
test_end
