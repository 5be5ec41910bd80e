#!/usr/bin/env bash
# fipsc compress on a ViT (the shipped DeiT-MNIST), round trip through the other commands:
#   compress (calibration from the MNIST IDX file minus the hold-out PNGs, ViT defaults) ->
#   classify / eval-images / inspect on the compressed .safetensors -> export --dense -> the
#   exported Hugging Face directory gives the same logits (1e-4) and the same top-1;
# calibration from a directory; usage errors (exit 2) and bad input (exit 1).
set -uo pipefail
fipsc=$FIPSC_CLI
deit=$FIPSC_SOURCE_DIR/models/deit-mnist
sample=$FIPSC_SOURCE_DIR/models/deit-mnist-sample
mnist=$FIPSC_SHARED_DIR/data/mnist/t10k-images-idx3-ubyte.gz
holdout=$FIPSC_SHARED_DIR/data/deit-mnist-holdout
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_vit_compress_cli

# --- compress: IDX calibration minus the hold-out set, ViT defaults (RigL, groups of 4) -------
c=$tmp/deit-fips.safetensors
expect 0 "$fipsc" compress "$deit" -o "$c" --calib-idx "$mnist" --calib-exclude "$holdout" \
  --calib-count 96 --steps 40 --budget 0.5 --report "$tmp/report.json" --threads 2
cp "$tmp/out" "$tmp/compress.out"
[ -s "$c" ] || fail "compress wrote no file"
grep -q "deit-mnist -> .*deit-fips.safetensors" "$tmp/compress.out" || fail "compress table: $(head -3 "$tmp/compress.out")"
node - "$tmp/report.json" <<'JS' || fail "compress report: $(head -c 600 "$tmp/report.json")"
const r = JSON.parse(require('fs').readFileSync(process.argv[2], 'utf8'));
const o = r.options;
if (o.method !== 'fips' || o.schedule !== 'rigl' || o.groups !== '4' || o.steps !== 40)
  throw new Error('options ' + JSON.stringify(o));
if (!/^the first 96 images of IDX file t10k-images-idx3-ubyte\.gz that equal no image of deit-mnist-holdout \(\d+ skipped\)$/.test(r.calibration.source))
  throw new Error('source ' + r.calibration.source);
if (r.calibration.sequences !== 96 || r.calibration.rows_per_block !== 96 * 18)
  throw new Error('calibration ' + JSON.stringify(r.calibration));
if (r.groups.length !== 1 || r.groups[0].blocks.join() !== '0,3') throw new Error('groups');
const f = r.totals.params_fraction;
if (!(f <= 0.5 && f > 0.45)) throw new Error('params fraction ' + f);
for (const m of r.groups[0].mlps) {
  console.log(`block ${m.block}: output error ${m.output_rel_err_before.toFixed(4)} -> ${m.output_rel_err_after.toFixed(4)}`);
  if (!(m.output_rel_err_after < m.output_rel_err_before)) throw new Error('training did not help block ' + m.block);
}
JS
# the same command gives the same file, also with the calibration rows in a scratch file
expect 0 "$fipsc" compress "$deit" -o "$tmp/again.safetensors" --calib-idx "$mnist" --calib-exclude "$holdout" \
  --calib-count 96 --steps 40 --budget 0.5 --quiet --threads 2 --spill always --scratch-dir "$tmp"
cmp -s "$c" "$tmp/again.safetensors" || fail "compress is not deterministic (or spilling the rows changed it)"

# --- the compressed file runs: inspect, classify, eval-images -------------------------------
expect 0 "$fipsc" inspect "$c"
grep -qi "deit" "$tmp/out" || fail "inspect: $(head -5 "$tmp/out")"
expect 0 "$fipsc" classify "$c" "$sample/0000.png"
sed -n 2p "$tmp/out" | grep -qE '^  1\. 2 +class 2 ' || fail "classify compressed 0000: $(cat "$tmp/out")"
expect 0 "$fipsc" eval-images "$c" --dir "$sample" --labels "$sample/labels.tsv" --json
cp "$tmp/out" "$tmp/eval-compressed.json"
node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  if (r.images !== 20 || r.top1 < 0.9) throw new Error(JSON.stringify(r));' "$tmp/eval-compressed.json" ||
  fail "eval-images on the compressed model: $(cat "$tmp/eval-compressed.json")"
images=()
for i in 00 01 02 03 04 05 06 07 08 09 10 11; do images+=("$sample/00$i.png"); done
expect 0 "$fipsc" classify --json --top 10 "$c" "${images[@]}"
cp "$tmp/out" "$tmp/classify-compressed.json"

# --- export --dense: a standard Hugging Face directory with the same behaviour --------------
expect 0 "$fipsc" export "$c" --dense -o "$tmp/exported"
for f in config.json model.safetensors preprocessor_config.json; do
  [ -s "$tmp/exported/$f" ] || fail "export wrote no $f"
done
grep -q '"DeiTForImageClassificationWithTeacher"' "$tmp/exported/config.json" || fail "exported config.json"
grep -q fipsc_preprocessor_config "$tmp/exported/config.json" && fail "exported config.json carries fipsc's key"
node -e 'const fs = require("fs"), a = JSON.parse(fs.readFileSync(process.argv[1], "utf8")), b = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error("differ");' "$tmp/exported/preprocessor_config.json" \
  "$deit/preprocessor_config.json" || fail "exported preprocessor_config.json differs from the original"
node -e 'const fs = require("fs"), a = JSON.parse(fs.readFileSync(process.argv[1], "utf8")), b = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  if (JSON.stringify(a) !== JSON.stringify(b)) throw new Error("differ");' "$tmp/exported/config.json" \
  "$deit/config.json" || fail "exported config.json differs from the original"
expect 0 "$fipsc" classify --json --top 10 "$tmp/exported" "${images[@]}"
node - "$tmp/classify-compressed.json" "$tmp/out" <<'JS' || fail "exported logits differ from the compressed model's"
const fs = require('fs');
const a = JSON.parse(fs.readFileSync(process.argv[2], 'utf8')), b = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
let num = 0, den = 0;
a.images.forEach((img, i) => {
  const lb = {};
  for (const t of b.images[i].top) lb[t.class] = t.logit;
  for (const t of img.top) { num += (t.logit - lb[t.class]) ** 2; den += t.logit ** 2; }
});
if (!(Math.sqrt(num / den) <= 1e-4)) throw new Error('relative difference ' + Math.sqrt(num / den));
JS
expect 0 "$fipsc" eval-images "$tmp/exported" --dir "$sample" --labels "$sample/labels.tsv" --json
node -e 'const fs = require("fs"); const a = JSON.parse(fs.readFileSync(process.argv[1], "utf8")), b = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  if (a.top1_correct !== b.top1_correct || a.top5_correct !== b.top5_correct) throw new Error("top-1/5 differ");' \
  "$tmp/eval-compressed.json" "$tmp/out" || fail "eval-images: exported vs compressed differ"
expect 0 "$fipsc" inspect "$tmp/exported"

# --- a baseline and calibration from a directory ----------------------------------------------
expect 0 "$fipsc" compress "$deit" -o "$tmp/deit-svd.safetensors" --method svd --calib-images "$sample" --quiet
expect 0 "$fipsc" eval-images "$tmp/deit-svd.safetensors" --dir "$sample" --labels "$sample/labels.tsv"
grep -q "^images 20 " "$tmp/out" || fail "eval-images svd: $(cat "$tmp/out")"
# the walk-through's calibration file (README): 512 digits, none held out
expect 0 "$fipsc" compress "$deit" -o "$tmp/deit-init.safetensors" --method fips-init \
  --calib-idx "$sample/calib-512-images-idx3-ubyte.gz" --calib-exclude "$holdout" --report "$tmp/init.json" --quiet
grep -q '"source":.*"the first 512 images of IDX file calib-512-images-idx3-ubyte.gz that equal no image of deit-mnist-holdout (0 skipped) (all there are)"' \
  "$tmp/init.json" || fail "shipped calibration images: $(grep source "$tmp/init.json")"

# --- usage errors (2) and bad input (1) -------------------------------------------------------
expect 2 "$fipsc" compress "$deit" -o "$tmp/x.safetensors"
grep -q -- "--calib-images DIR or --calib-idx FILE" "$tmp/err" || fail "no calibration: $(cat "$tmp/err")"
expect 2 "$fipsc" compress "$deit" -o "$tmp/x.safetensors" --calib-images "$sample" --calib-idx "$mnist"
expect 2 "$fipsc" compress "$deit" -o "$tmp/x.safetensors" --calib-images "$sample" --calib-samples 4
expect 2 "$fipsc" compress "$deit" -o "$tmp/x.safetensors" --calib-images "$sample" --calib-count 0
expect 2 "$fipsc" compress "$FIPSC_SOURCE_DIR/models/stories260K.bin" -o "$tmp/x.safetensors" --calib-idx "$mnist"
grep -q "image classifiers only" "$tmp/err" || fail "images for a Llama model: $(cat "$tmp/err")"
expect 2 "$fipsc" compress "$deit" -o "$tmp/x.safetensors" --calib-images "$sample" --calib-exclude "$sample"
grep -q "no calibration images left after --calib-exclude" "$tmp/err" || fail "all excluded: $(cat "$tmp/err")"
expect 1 "$fipsc" compress "$deit" -o "$tmp/x.safetensors" --calib-idx "$sample/labels.tsv"
grep -q "^fipsc compress: .*labels.tsv: not an IDX image file" "$tmp/err" || fail "bad IDX: $(cat "$tmp/err")"
[ -e "$tmp/x.safetensors" ] && fail "a failed compress left its output behind"
expect 0 "$fipsc" compress --help
grep -q -- "--calib-idx FILE" "$tmp/out" || fail "compress --help lists no --calib-idx"

test_end
