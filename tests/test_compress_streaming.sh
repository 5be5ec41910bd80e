#!/usr/bin/env bash
# Streaming calibration (the default: each group's rows captured when the compressor reaches it,
# by running the original blocks from the residual stream the earlier ones left) writes the same
# bytes as capturing every group's rows in one forward first (--capture-all), on the three small
# models and the tiny GPT-2 (every family) — several groups, a block left dense between them, groups of one — and
# with the rows spilled to a scratch file, with a sampled calibration corpus (sampled once), and
# resumed from checkpoints (the restored groups' rows are still checked: another corpus is
# refused). The report says which was used.
set -euo pipefail
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_compress_streaming
fipsc=$FIPSC_CLI
src=$FIPSC_SOURCE_DIR
stories=$src/models/stories260K.bin

same() { # NAME ARGS...: compress streamed and with --capture-all; the files must be equal
  local name=$1
  shift
  expect 0 "$fipsc" compress "$@" -o "$tmp/$name-s.safetensors" --report "$tmp/$name-s.json" --quiet
  expect 0 "$fipsc" compress "$@" -o "$tmp/$name-a.safetensors" --report "$tmp/$name-a.json" --quiet --capture-all
  cmp -s "$tmp/$name-s.safetensors" "$tmp/$name-a.safetensors" || fail "$name: streamed and --capture-all files differ"
  # the rows themselves, through every MLP's errors on them (a group that keeps its SVD start
  # writes the same tensors whatever its rows)
  node -e 'const fs = require("fs");
    const errors = r => JSON.stringify(r.groups.map(g => g.mlps.map(m => [m.output_rel_err_before,
      m.output_rel_err_after, m.holdout_rel_err_before, m.holdout_rel_err_after])));
    const [s, a] = process.argv.slice(1).map(f => JSON.parse(fs.readFileSync(f, "utf8")));
    process.exit(errors(s) === errors(a) ? 0 : 1)' "$tmp/$name-s.json" "$tmp/$name-a.json" ||
    fail "$name: the MLP errors on the calibration rows differ"
  node -e 'const fs = require("fs");
    const [s, a] = process.argv.slice(1).map(f => JSON.parse(fs.readFileSync(f, "utf8")).memory_plan_bytes);
    process.exit(s.calibration_streamed === true && a.calibration_streamed === false &&
                 (s.calibration_spilled || s.calibration < a.calibration) ? 0 : 1)' "$tmp/$name-s.json" "$tmp/$name-a.json" ||
    fail "$name: the reports do not tell streamed from --capture-all (or streaming planned no less memory)"
  echo "ok: $name"
}

# stories260K (Llama family): a token corpus; block 0 left dense, then groups of 2 and 1 and 1
"$fipsc" sample "$stories" --n 8 --len 64 --seed 3 -o "$tmp/calib.tok" >/dev/null
lm=("$stories" --steps 15 --calib-corpus "$tmp/calib.tok" --threads 1)
same stories "${lm[@]}" --groups 1-2,3,4
# sampled from the model (sampled once: the later passes run on a partly compressed model)
same stories-sampled "$stories" --steps 10 --calib-samples 6 --calib-len 48 --groups 0-1,2-3,4 --threads 1
# rows in a scratch file
same stories-spilled "${lm[@]}" --groups 0,1-2,3-4 --spill always --scratch-dir "$tmp"

# the tiny GPT-2 of tests/data (GPT-2 family): one block per group
gpt2=$src/tests/data/gpt2/tiny
n_gpt2=$("$fipsc" inspect "$gpt2" | grep -o '[0-9]* layers' | head -1 | cut -d' ' -f1)
groups=$(seq -s, 0 $((n_gpt2 - 1)))
same gpt2 "$gpt2" --steps 10 --calib-samples 6 --calib-len 32 --groups "$groups" --threads 1

# DeiT-MNIST (ViT family): images; 4 blocks, block 1 left dense
same deit "$src/models/deit-mnist" --steps 5 --groups 0,2-3 \
  --calib-idx "$src/models/deit-mnist-sample/calib-512-images-idx3-ubyte.gz" --calib-count 40

# USE-Lite (sentence encoder): sentences, drawn by a seed; its 2 blocks in groups of one
use_dir=$(use_model_dir)
expect 0 "$fipsc" import-tfjs "$use_dir" -o "$tmp/use.safetensors"
same use "$tmp/use.safetensors" --steps 5 --groups 0,1 --calib-sentences "$src/tests/data/sts-small.tsv" \
  --calib-rows 3000 --lr 1e-3

# Resumed: groups restored from checkpoints still move the stream through their original blocks,
# so the later groups get the same rows and the file the same bytes.
ck=("${lm[@]}" --groups 0,1-2,3,4 --quiet --checkpoint-dir "$tmp/ck")
expect 0 "$fipsc" compress "${ck[@]}" -o "$tmp/ck1.safetensors"
rm "$tmp/ck/group-001.safetensors" "$tmp/ck/group-003.safetensors"
expect 0 "$fipsc" compress "${ck[@]}" -o "$tmp/ck2.safetensors" --resume
cmp -s "$tmp/ck1.safetensors" "$tmp/ck2.safetensors" || fail "a resumed streamed run differs from an uninterrupted one"
# A restored group's rows are checked when the stream reaches it: another corpus is refused, with
# no output.
"$fipsc" sample "$stories" --n 8 --len 64 --seed 4 -o "$tmp/other.tok" >/dev/null
rm "$tmp/ck/group-000.safetensors"
expect 1 "$fipsc" compress "${ck[@]}" --calib-corpus "$tmp/other.tok" -o "$tmp/ck3.safetensors" --resume
expect_err "was made with calibration rows"
[ ! -e "$tmp/ck3.safetensors" ] || fail "a refused resume wrote its output"

test_end
