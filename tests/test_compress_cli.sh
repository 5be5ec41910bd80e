#!/usr/bin/env bash
# fipsc compress through the command line on the shipped stories260K: usage and input errors (exit
# code, message, no output file left behind), a short end-to-end run whose KL divergence against
# the original is lower with training (fips) than without (fips-init) at the same budget, the
# JSON report against `fipsc inspect --json` of the written file, the baselines, and
# byte-identical output for the same seed.
set -euo pipefail
fipsc=$FIPSC_CLI
model=$FIPSC_SOURCE_DIR/models/stories260K.bin
tmp=$FIPSC_BINARY_DIR/test-tmp/test_compress_cli
rm -rf "$tmp" && mkdir -p "$tmp"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
expect_in() { grep -qF -- "$2" "$1" || fail "$1 does not contain '$2': $(head -c 600 "$1")"; }

# A short, cheap run: small calibration, few steps.
quick=(--calib-samples 12 --calib-len 96 --steps 60 --batch 256 --lr 3e-3 --groups 0-1,2-4)

# expect_error CODE MESSAGE ARGS...: the command fails with CODE, says MESSAGE on stderr and
# leaves no output file (nor a temporary one) behind.
expect_error() {
  local want=$1 msg=$2
  shift 2
  local rc=0
  "$fipsc" compress "$@" >"$tmp/err.out" 2>"$tmp/err.txt" || rc=$?
  [ "$rc" = "$want" ] || fail "compress $* exited $rc, expected $want: $(cat "$tmp/err.txt")"
  expect_in "$tmp/err.txt" "$msg"
  [ ! -s "$tmp/err.out" ] || fail "compress $* printed on stdout: $(head -c 300 "$tmp/err.out")"
  ls "$tmp"/bad.safetensors* "$tmp"/bad.json* >/dev/null 2>&1 && fail "compress $* left a file behind: $(ls "$tmp")"
  return 0
}

# --help
"$fipsc" compress --help >"$tmp/help.txt" || fail "compress --help exited $?"
for opt in --budget --sparsity --groups --schedule --nm --steps --lr --batch --mode --calib-corpus \
           --calib-samples --calib-len --method --seed --threads --report --quiet --max-memory --spill --scratch-dir --dry-run --u-dtype --v-dtype --storage; do
  expect_in "$tmp/help.txt" "$opt"
done

# usage errors: exit 2
out=$tmp/bad.safetensors
expect_error 2 "missing -o" "$model"
expect_error 2 "missing MODEL" -o "$out"
expect_error 2 "--budget 0 is not in (0, 1]" "$model" -o "$out" --budget 0
expect_error 2 "--budget 1.5 is not in (0, 1]" "$model" -o "$out" --budget 1.5
expect_error 2 "--budget expects a number in (0, 1], got 'half'" "$model" -o "$out" --budget half
expect_error 2 "--sparsity 1 is not in [0, 1)" "$model" -o "$out" --sparsity 1
expect_error 2 "--sparsity -0.5 is not in [0, 1)" "$model" -o "$out" --sparsity -0.5
expect_error 2 "invalid --groups '0-1,1-4': block 1 is in two groups" "$model" -o "$out" --groups 0-1,1-4
expect_error 2 "invalid --groups '0-5': block 5 does not exist (the model has 5 blocks, 0-4)" "$model" -o "$out" --groups 0-5
expect_error 2 "invalid --groups '3-1': the range 3-1 runs backwards" "$model" -o "$out" --groups 3-1
expect_error 2 "invalid --groups 'two'" "$model" -o "$out" --groups two
expect_error 2 "--nm expects N:M" "$model" -o "$out" --nm 4:2
expect_error 2 "--nm 2:4 needs a rank that is a multiple of 4, but --rank is 50" "$model" -o "$out" --nm 2:4 --rank 50
expect_error 2 "3 does not divide 64" "$model" -o "$out" --method magnitude --nm 2:3
expect_error 2 "--nm applies to fips, fips-init and magnitude, not to svd" "$model" -o "$out" --method svd --nm 2:4
expect_error 2 "--method must be" "$model" -o "$out" --method pca
expect_error 2 "--schedule must be gmp, rigl or static" "$model" -o "$out" --schedule cubic
expect_error 2 "--mode must be joint or local" "$model" -o "$out" --mode global
expect_error 2 "exclude each other" "$model" -o "$out" --calib-corpus x.tok --calib-samples 4
expect_error 2 "unknown option '--frobnicate'" "$model" -o "$out" --frobnicate
expect_error 2 "--storage must be auto, csc, bitmap or dense, got 'coo'" "$model" -o "$out" --storage coo
expect_error 2 "--storage must be auto, csc, bitmap or dense, got 'nm'" "$model" -o "$out" --storage nm
expect_error 2 "--nm stores V n:m-packed: leave --storage at auto" "$model" -o "$out" --nm 2:4 --storage csc
expect_error 2 "--v-dtype must be auto, f32, f16 or bf16, got 'f8'" "$model" -o "$out" --v-dtype f8

# a calibration corpus from another vocabulary: an id the model does not have (text corpus) ...
printf '1 20 30\n1 700 5 9\n' >"$tmp/other.txt"
expect_error 2 "token id 700 is not below the vocabulary size 512" "$model" -o "$out" --calib-corpus "$tmp/other.txt"
# ... and a binary corpus whose header names another vocabulary (ids all valid here)
node -e '
  const b = Buffer.alloc(24 + 4 * 8);
  b.write("FIPSCTOK", 0, "latin1");
  b.writeUInt32LE(1, 8); b.writeUInt32LE(2, 12); b.writeUInt32LE(4, 16); b.writeUInt32LE(32000, 20);
  [1, 5, 9, 11, 1, 7, 3, 2].forEach((v, i) => b.writeUInt32LE(v, 24 + 4 * i));
  require("fs").writeFileSync(process.argv[1], b);' "$tmp/other.tok"
expect_error 2 "made for a vocabulary of 32000 tokens, but the model has 512" "$model" -o "$out" --calib-corpus "$tmp/other.tok"

# failures: exit 1
expect_error 1 "x.tok" "$model" -o "$out" --calib-corpus "$tmp/x.tok"
expect_error 1 "no-such-dir" "$model" -o "$tmp/no-such-dir/c.safetensors"
expect_error 1 "no-such-dir" "$model" -o "$out" --report "$tmp/no-such-dir/r.json"
expect_error 1 "no-such-model.bin" "$tmp/no-such-model.bin" -o "$out"

# an evaluation corpus (seed 1); calibration is sampled with a seed derived from --seed
"$fipsc" sample "$model" --n 8 --len 128 --seed 1 -o "$tmp/eval.tok" 2>/dev/null || fail "sample exited $?"

# fips and fips-init at the same budget: training must lower the KL divergence
kl() { # kl FILE -> mean KL against the original
  "$fipsc" eval "$1" --ref "$model" --corpus "$tmp/eval.tok" --json 2>/dev/null |
    node -e 'console.log(JSON.parse(require("fs").readFileSync(0, "utf8")).kl_mean)'
}
"$fipsc" compress "$model" -o "$tmp/fips.safetensors" "${quick[@]}" --budget 0.6 --sparsity 0.6 \
  --report "$tmp/fips.json" >"$tmp/fips.txt" 2>"$tmp/fips.err" || fail "compress fips exited $?: $(cat "$tmp/fips.err")"
"$fipsc" compress "$model" -o "$tmp/init.safetensors" "${quick[@]}" --budget 0.6 --sparsity 0.6 \
  --method fips-init --quiet >"$tmp/init.txt" 2>&1 || fail "compress fips-init exited $?"
[ ! -s "$tmp/init.txt" ] || fail "--quiet printed: $(head -c 300 "$tmp/init.txt")"
# not a terminal: one summary line per group on stderr, the table on stdout
[ "$(grep -c '^group [12]/2 (blocks ' "$tmp/fips.err")" = 2 ] || fail "expected 2 group summaries: $(cat "$tmp/fips.err")"
expect_in "$tmp/fips.txt" "method fips, budget 0.6, sparsity 0.6, groups 0-1,2-4, joint, gmp, 60 steps of 256 rows, lr 0.003"
expect_in "$tmp/fips.txt" "MLP total: parameters"
kl_fips=$(kl "$tmp/fips.safetensors")
kl_init=$(kl "$tmp/init.safetensors")
node -e "process.exit(+process.argv[1] > 0 && +process.argv[1] < +process.argv[2] ? 0 : 1)" "$kl_fips" "$kl_init" ||
  fail "KL fips $kl_fips is not below KL fips-init $kl_init"
echo "KL vs original on 8x128 tokens: fips $kl_fips, fips-init $kl_init"

# the report against inspect --json of the written file
"$fipsc" inspect --json "$tmp/fips.safetensors" >"$tmp/fips.inspect.json" || fail "inspect exited $?"
"$fipsc" inspect "$tmp/fips.safetensors" >"$tmp/fips.inspect.txt" || fail "inspect exited $?"
expect_in "$tmp/fips.inspect.txt" "format: fipsc-compressed"
node - "$tmp/fips.json" "$tmp/fips.inspect.json" <<'JS' || fail "report and inspect disagree"
const fs = require('fs');
const [rep, ins] = process.argv.slice(2).map(f => JSON.parse(fs.readFileSync(f, 'utf8')));
const problems = [];
const expect = (cond, what) => { if (!cond) problems.push(what); };
const t = rep.totals, fp = ins.compression.footprint;
expect(t.mlp_dense_params === 165120 && fp.dense_params === 165120, 'dense params');
expect(t.mlp_kept_params === fp.kept_params, `kept params ${t.mlp_kept_params} vs ${fp.kept_params}`);
expect(t.mlp_stored_bytes === fp.stored_bytes, `bytes ${t.mlp_stored_bytes} vs ${fp.stored_bytes}`);
expect(t.mlp_kept_params <= 0.6 * 165120, `budget exceeded: ${t.mlp_kept_params}`);
expect(t.mlp_stored_bytes < t.mlp_dense_bytes, 'not smaller than dense in bytes');
expect(rep.options.method === 'fips' && rep.options.budget === 0.6 && rep.options.steps === 60, 'options');
expect(rep.calibration.sequences === 12 && rep.calibration.rows_per_block === 12 * 96, 'calibration');
expect(rep.groups.length === 2 && ins.compression.groups.length === 2, 'group count');
rep.groups.forEach((g, k) => {
  const ig = ins.compression.groups[k];
  expect(g.blocks[0] === ig.first_layer && g.blocks[1] === ig.last_layer, `group ${k} blocks`);
  expect(g.rank === ig.rank && g.storage === ig.storage, `group ${k} rank/storage ${g.rank}/${g.storage} vs ${ig.rank}/${ig.storage}`);
  expect(ig.method === 'fips', `group ${k} method ${ig.method}`);
  expect(g.matrices.length === ig.matrices.length, `group ${k} matrices`);
  g.matrices.forEach((m, i) => {
    const im = ig.matrices[i];
    expect(m.block === im.layer && m.role === im.role && m.nnz === im.nnz,
           `group ${k} matrix ${i}: ${m.block}/${m.role}/${m.nnz} vs ${im.layer}/${im.role}/${im.nnz}`);
    expect(m.weight_rel_err > 0 && m.weight_rel_err < 1, `group ${k} matrix ${i} error ${m.weight_rel_err}`);
  });
  const nnz = g.matrices.reduce((s, m) => s + m.nnz, 0);
  expect(nnz === g.nnz && g.kept_params === g.d * g.rank + nnz, `group ${k} nnz/params`);
  expect(Math.abs(g.sparsity - 0.6) < 0.01, `group ${k} sparsity ${g.sparsity}`);
  g.mlps.forEach(m => console.log(`block ${m.block}: output error ${m.output_rel_err_before.toFixed(4)} -> ${m.output_rel_err_after.toFixed(4)}`));
  g.mlps.forEach(m => expect(m.output_rel_err_after < m.output_rel_err_before,
                             `block ${m.block}: ${m.output_rel_err_before} -> ${m.output_rel_err_after}`));
  expect(g.seconds >= 0 && g.steps === 60, `group ${k} time/steps`);
  // --holdout 0.1 of 12 sequences: the last one (96 rows) is held out of training
  g.mlps.forEach(m => expect(m.holdout_rows === 96 && m.calibration_rows === 12 * 96 &&
                             m.holdout_rel_err_after < m.holdout_rel_err_before,
                             `block ${m.block}: held-out rows ${m.holdout_rows}, errors ${m.holdout_rel_err_before} -> ${m.holdout_rel_err_after}`));
  expect(g.kept_step > 0 && g.kept_step <= 60 && g.score_kept === g.score_trained && g.score_kept < g.score_init,
         `group ${k}: kept step ${g.kept_step}, scores ${g.score_init} -> ${g.score_trained} (${g.score_kept})`);
});
expect(rep.options.holdout === 0.1, 'holdout option');
// the peak resident memory by the end of each phase: known on Linux, and it only grows
const pr = rep.peak_rss_bytes, seq = [pr.loaded, pr.calibrated, ...pr.groups];
expect(pr.groups.length === 2 && seq.every((v, i) => v > 1e6 && (i === 0 || v >= seq[i - 1])) &&
       rep.groups.every((g, k) => g.peak_rss_bytes === pr.groups[k]), `peak RSS ${JSON.stringify(pr)}`);
// the memory plan, made before any work: its parts add up, 12 × 96 rows per block (streamed: the
// x and y rows of the largest group, 3 blocks, and the residual stream), within the machine's
// memory, and (a tiny model: the process's own baseline dominates) within 5× the peak
const mp = rep.memory_plan_bytes;
expect(mp && mp.calibration_rows_per_block === 12 * 96 && mp.calibration === 12 * 96 * 64 * (8 * 3 + 4) &&
       mp.calibration_streamed === true &&
       mp.total === mp.model + mp.calibration + Math.max(mp.forward, mp.largest_group) &&
       mp.largest_group > 0 && mp.budget > mp.total && mp.total < 5 * seq[seq.length - 1],
       `memory plan ${JSON.stringify(mp)} (peak ${seq[seq.length - 1]})`);
const meta = ins.metadata && JSON.stringify(ins.metadata);
expect(meta && meta.includes('fipsc.compress'), 'fipsc.compress metadata');
if (problems.length) { console.error(problems.join('\n')); process.exit(1); }
JS

# the same seed gives the same bytes; another seed does not
"$fipsc" compress "$model" -o "$tmp/fips2.safetensors" "${quick[@]}" --budget 0.6 --sparsity 0.6 --quiet ||
  fail "second compress exited $?"
cmp -s "$tmp/fips.safetensors" "$tmp/fips2.safetensors" || fail "same seed, different output files"
"$fipsc" compress "$model" -o "$tmp/fips3.safetensors" "${quick[@]}" --budget 0.6 --sparsity 0.6 --seed 7 --quiet ||
  fail "third compress exited $?"
cmp -s "$tmp/fips.safetensors" "$tmp/fips3.safetensors" && fail "seeds 1 and 7 gave the same file"

# a calibration corpus file works too (text form), as do the baselines; all evaluate
"$fipsc" sample "$model" --n 6 --len 64 --seed 5 -o "$tmp/calib.tok" 2>/dev/null || fail "sample exited $?"
for method in shared-svd svd magnitude; do
  "$fipsc" compress "$model" -o "$tmp/$method.safetensors" --method "$method" --budget 0.5 \
    --calib-corpus "$tmp/calib.tok" --report "$tmp/$method.json" --quiet || fail "compress --method $method exited $?"
  "$fipsc" eval "$tmp/$method.safetensors" --ref "$model" --corpus "$tmp/eval.tok" >"$tmp/$method.eval" ||
    fail "eval of $method exited $?"
  expect_in "$tmp/$method.eval" "KL(ref||model)"
  "$fipsc" inspect "$tmp/$method.safetensors" >"$tmp/$method.inspect" || fail "inspect of $method exited $?"
  expect_in "$tmp/$method.inspect" "method $method"
done
expect_in "$tmp/magnitude.json" 'corpus calib.tok'
# n:m 2:4 with U stored as bf16: the report's bytes are still those of the file
"$fipsc" compress "$model" -o "$tmp/nm.safetensors" "${quick[@]}" --nm 2:4 --u-dtype bf16 --quiet \
  --report "$tmp/nm.json" || fail "compress --nm 2:4 exited $?"
"$fipsc" inspect "$tmp/nm.safetensors" >"$tmp/nm.inspect" || fail "inspect of the n:m file exited $?"
expect_in "$tmp/nm.inspect" "V nm"
expect_in "$tmp/nm.inspect" "U BF16"
"$fipsc" inspect --json "$tmp/nm.safetensors" >"$tmp/nm.inspect.json" || fail "inspect --json exited $?"
node -e '
  const fs = require("fs");
  const [rep, ins] = process.argv.slice(1).map(f => JSON.parse(fs.readFileSync(f, "utf8")));
  const fp = ins.compression.footprint, t = rep.totals;
  if (t.mlp_stored_bytes !== fp.stored_bytes || t.mlp_kept_params !== fp.kept_params ||
      rep.options.u_dtype !== "BF16" || rep.groups.some(g => g.rank % 4 !== 0 || g.storage !== "nm")) {
    console.error(JSON.stringify({report: t, inspect: fp, groups: rep.groups.map(g => [g.rank, g.storage])}));
    process.exit(1);
  }' "$tmp/nm.json" "$tmp/nm.inspect.json" || fail "n:m bf16 report and inspect disagree"

# storage: the default picks the bitmap at sparsity 0.75; --storage csc forces CSC with the same
# values (same KL); --v-dtype bf16 halves the value bytes (format version 2)
for variant in auto csc; do
  "$fipsc" compress "$model" -o "$tmp/st-$variant.safetensors" "${quick[@]}" --storage "$variant" --quiet \
    --report "$tmp/st-$variant.json" || fail "compress --storage $variant exited $?"
  "$fipsc" eval "$tmp/st-$variant.safetensors" --ref "$model" --corpus "$tmp/eval.tok" --json >"$tmp/st-$variant.eval" ||
    fail "eval of --storage $variant exited $?"
done
"$fipsc" compress "$model" -o "$tmp/st-bf16.safetensors" "${quick[@]}" --v-dtype bf16 --quiet \
  --report "$tmp/st-bf16.json" || fail "compress --v-dtype bf16 exited $?"
"$fipsc" inspect "$tmp/st-bf16.safetensors" >"$tmp/st-bf16.inspect" || fail "inspect of the bf16 file exited $?"
expect_in "$tmp/st-bf16.inspect" "V bitmap BF16"
node -e '
  const fs = require("fs");
  const [a, c, b, ea, ec] = process.argv.slice(1).map(f => JSON.parse(fs.readFileSync(f, "utf8")));
  const bad = a.groups.some(g => g.storage !== "bitmap") || c.groups.some(g => g.storage !== "csc") ||
    b.groups.some(g => g.storage !== "bitmap" || g.v_dtype !== "BF16" || g.u_dtype !== "F32") ||
    !(a.totals.mlp_stored_bytes < c.totals.mlp_stored_bytes) ||
    !(b.totals.mlp_stored_bytes < a.totals.mlp_stored_bytes) || ea.kl_mean !== ec.kl_mean;
  if (bad) { console.error(JSON.stringify({a: a.totals, c: c.totals, b: b.totals, kl: [ea.kl_mean, ec.kl_mean]})); process.exit(1); }
' "$tmp/st-auto.json" "$tmp/st-csc.json" "$tmp/st-bf16.json" "$tmp/st-auto.eval" "$tmp/st-csc.eval" ||
  fail "storage choices: reports disagree"

# training that loses to its initialisation (a constant learning rate far too high for 10 steps):
# a warning, the initialisation kept; with --strict an error and no file
lose=(--budget 0.5 --steps 10 --lr 0.05 --lr-min 0.05 --schedule static --calib-samples 8 --calib-len 64)
"$fipsc" compress "$model" -o "$tmp/lost.safetensors" "${lose[@]}" --quiet --report "$tmp/lost.json" \
  >"$tmp/lost.txt" 2>"$tmp/lost.err" || fail "compress (training that loses) exited $?: $(cat "$tmp/lost.err")"
expect_in "$tmp/lost.err" "warning: group 0 (blocks 0-1): training did not improve on the SVD initialisation"
"$fipsc" compress "$model" -o "$tmp/lost-init.safetensors" --method fips-init --budget 0.5 --calib-samples 8 \
  --calib-len 64 --quiet || fail "compress fips-init exited $?"
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const bad = r.groups.filter(g => !(g.kept_step === 0 && g.score_kept === g.score_init && g.score_trained > g.score_init));
  if (bad.length) { console.error(JSON.stringify(bad.map(g => [g.kept_step, g.score_init, g.score_trained]))); process.exit(1); }' \
  "$tmp/lost.json" || fail "the report does not say the initialisation was kept"
# what was kept is fips-init's factors: the same KL on the evaluation corpus
[ "$(kl "$tmp/lost.safetensors")" = "$(kl "$tmp/lost-init.safetensors")" ] ||
  fail "the kept initialisation differs from fips-init: KL $(kl "$tmp/lost.safetensors") vs $(kl "$tmp/lost-init.safetensors")"
expect_error 1 "training did not improve on the SVD initialisation" "$model" -o "$out" "${lose[@]}" --strict
expect_in "$tmp/err.txt" "--strict: nothing is written"
# ... also for a group that comes from a checkpoint of a run without --strict
"$fipsc" compress "$model" -o "$tmp/lost2.safetensors" "${lose[@]}" --quiet --checkpoint-dir "$tmp/ck" 2>/dev/null ||
  fail "compress with --checkpoint-dir exited $?"
expect_error 1 "from its checkpoint: training did not improve on the SVD initialisation" "$model" -o "$out" \
  "${lose[@]}" --checkpoint-dir "$tmp/ck" --resume --strict
expect_error 2 "--holdout expects a number in [0, 0.5], got '0.7'" "$model" -o "$out" --holdout 0.7

# --max-memory: a run whose plan does not fit is refused before any work, naming its parts
expect_error 1 "this run needs about" "$model" -o "$out" "${quick[@]}" --max-memory 1M
expect_in "$tmp/err.txt" "but may use 1.0 MB (--max-memory"
expect_in "$tmp/err.txt" "calibration rows 2.1 MB (at most 1152 per block, spilled to a 1.8 MB scratch file: the largest group's in memory)"
# the Llama family's moments are bf16 already: not suggested again; with f32 moments they are
grep -q -- "--adam-moments bf16" "$tmp/err.txt" && fail "the refusal suggests the moments the run already has"
expect_error 1 "halve the optimiser state (--adam-moments bf16) or raise --max-memory" "$model" -o "$out" "${quick[@]}" \
  --max-memory 1M --adam-moments f32
expect_error 1 "calibration rows 2.1 MB (at most 1152 per block, streamed: the largest group's and the residual stream)," "$model" -o "$out" "${quick[@]}" --max-memory 1M --spill never
# every group's rows at once: 5 blocks' rows (and, spilled, a file for all of them)
expect_error 1 "calibration rows 2.9 MB (at most 1152 per block)," "$model" -o "$out" "${quick[@]}" --max-memory 1M --spill never --capture-all
expect_error 1 "spilled to a 2.9 MB scratch file" "$model" -o "$out" "${quick[@]}" --max-memory 1M --capture-all
expect_in "$tmp/err.txt" "nothing was done"
expect_error 2 "--max-memory expects a size like 20G" "$model" -o "$out" --max-memory 12X
expect_error 2 "--max-memory expects a size like 20G" "$model" -o "$out" --max-memory -3G
"$fipsc" compress "$model" -o "$tmp/mem.safetensors" "${quick[@]}" --steps 5 --max-memory 1GiB \
  >"$tmp/mem.txt" 2>&1 || fail "compress --max-memory 1GiB exited $?: $(cat "$tmp/mem.txt")"
"$fipsc" compress "$model" -o "$tmp/mem2.safetensors" "${quick[@]}" --steps 5 --max-memory none \
  >"$tmp/mem2.txt" 2>&1 || fail "compress --max-memory none exited $?: $(cat "$tmp/mem2.txt")"
expect_in "$tmp/mem.txt" "memory planned before the run:"
expect_in "$tmp/mem.txt" "of a budget of 1.07 GB"
cmp -s "$tmp/mem.safetensors" "$tmp/mem2.safetensors" || fail "--max-memory changed the result"
# calibration rows spilled to a scratch file: the same bytes; a scratch directory that cannot hold
# them is refused before any work
"$fipsc" compress "$model" -o "$tmp/spill.safetensors" "${quick[@]}" --steps 5 --spill always --scratch-dir "$tmp" \
  >"$tmp/spill.txt" 2>&1 || fail "compress --spill always exited $?: $(cat "$tmp/spill.txt")"
expect_in "$tmp/spill.txt" "calibration rows spilled to a 1.8 MB scratch file"
cmp -s "$tmp/mem.safetensors" "$tmp/spill.safetensors" || fail "spilling the calibration rows changed the result"
ls "$tmp"/fipsc-calibration-* >/dev/null 2>&1 && fail "the scratch file was left behind"
expect_error 1 "scratch directory $tmp/none (for the calibration rows): No such file or directory" "$model" -o "$out" "${quick[@]}" --spill always \
  --scratch-dir "$tmp/none"
expect_error 2 "--spill must be auto, always or never, got 'sometimes'" "$model" -o "$out" --spill sometimes
# --dry-run: the groups and the memory plan, nothing written (no -o needed)
"$fipsc" compress "$model" "${quick[@]}" --dry-run >"$tmp/dry.txt" 2>&1 || fail "compress --dry-run exited $?: $(cat "$tmp/dry.txt")"
expect_in "$tmp/dry.txt" "dry run, nothing done"
expect_in "$tmp/dry.txt" "group 0: blocks 0-1, d 64, P 1032, rank 102, params 32844 of 66048"
expect_in "$tmp/dry.txt" "memory plan: "
expect_in "$tmp/dry.txt" "for at most 1152 rows per block"
"$fipsc" compress "$model" "${quick[@]}" --dry-run --spill always --scratch-dir "$tmp" >"$tmp/dry2.txt" 2>&1 ||
  fail "compress --dry-run --spill always exited $?"
expect_in "$tmp/dry2.txt" "a 1.8 MB scratch file in $tmp"
expect_error 1 "this run needs about" "$model" "${quick[@]}" --dry-run --max-memory 1M

ls "$tmp"/*.tmp* >/dev/null 2>&1 && fail "temporary files left behind: $(ls "$tmp")"
if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "test_compress_cli: all checks passed"
