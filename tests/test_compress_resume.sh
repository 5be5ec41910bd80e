#!/usr/bin/env bash
# fipsc compress --checkpoint-dir / --resume on the shipped stories260K (five groups of one block):
# runs killed with SIGKILL at several points (before the first group is saved, after 1 and 3
# groups, at a random early moment, right after the last group) leave no partial output, and
# resuming them gives a file byte-identical to an uninterrupted run; a resume with another option
# is refused naming it, one with another thread count gives the same file; a damaged (bit-flipped
# or truncated) checkpoint is an error naming the file, and deleting it recomputes its group.
set -euo pipefail
fipsc=$FIPSC_CLI
model=$FIPSC_SOURCE_DIR/models/stories260K.bin
tmp=$FIPSC_BINARY_DIR/test-tmp/test_compress_resume
rm -rf "$tmp" && mkdir -p "$tmp"
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
expect_in() { grep -qF -- "$2" "$1" || fail "$1 does not contain '$2': $(head -c 600 "$1")"; }

# Five groups, a few steps each: long enough per group to kill between groups by polling.
args=("$model" --groups 0,1,2,3,4 --steps 80 --calib-samples 8 --calib-len 64 --batch 128 --lr 3e-3
      --threads 1)
ref=$tmp/ref.safetensors

# --help documents the options.
"$fipsc" compress --help >"$tmp/help.txt"
expect_in "$tmp/help.txt" "--checkpoint-dir DIR"
expect_in "$tmp/help.txt" "--resume"

# (a) the reference: an uninterrupted run without checkpoints.
"$fipsc" compress "${args[@]}" -o "$ref" --quiet --report "$tmp/ref.json" || fail "reference run exited $?"
[ -s "$ref" ] || { echo "FAIL: no reference output" >&2; exit 1; }

# With checkpoints and nothing to resume, the output is the same; every group is saved.
"$fipsc" compress "${args[@]}" -o "$tmp/fresh.safetensors" --checkpoint-dir "$tmp/fresh.ckpt" --quiet ||
  fail "checkpointed run exited $?"
cmp -s "$ref" "$tmp/fresh.safetensors" || fail "a checkpointed run differs from the reference"
n=$(ls "$tmp/fresh.ckpt" | grep -c '^group-00[0-4]\.safetensors$' || true)
[ "$n" = 5 ] || fail "expected 5 group checkpoints, found: $(ls "$tmp/fresh.ckpt")"

saved_count() { ls "$1" 2>/dev/null | grep -c '^group-[0-9]*\.safetensors$' || true; }

# killed_run NAME WANT: starts a checkpointed run, waits until WANT groups are saved (WANT = 0:
# until the checkpoint directory exists, i.e. while group 0 is computing; WANT = "rand": a random
# early moment), kills it with SIGKILL, and checks what it left: no output under the final name
# unless it is complete (the run may have finished first), no temporary file under a final name.
killed_run() {
  local name=$1 want=$2 dir=$tmp/$1.ckpt out=$tmp/$1.safetensors
  "$fipsc" compress "${args[@]}" -o "$out" --checkpoint-dir "$dir" --quiet 2>"$tmp/$name.err" &
  local pid=$! waited=0
  if [ "$want" = rand ]; then
    sleep "0.$((RANDOM % 9))$((RANDOM % 10))"
  else
    while kill -0 "$pid" 2>/dev/null; do
      if [ -d "$dir" ] && [ "$(saved_count "$dir")" -ge "$want" ]; then break; fi
      sleep 0.02
      waited=$((waited + 1))
      [ "$waited" -lt 15000 ] || { fail "$name: no progress in 300 s"; break; }
    done
  fi
  kill -KILL "$pid" 2>/dev/null || true
  local rc=0
  { wait "$pid"; } 2>/dev/null || rc=$?
  local had
  had=$(saved_count "$dir")
  echo "$name: killed (exit $rc) with $had group(s) saved" >&2
  if [ -e "$out" ]; then
    # Only a finished run may leave the output, and then it is complete.
    cmp -s "$ref" "$out" || fail "$name: the kill left a partial or different $out"
  fi
  [ "$rc" = 0 ] || [ "$rc" = 137 ] || fail "$name: exited $rc: $(cat "$tmp/$name.err")"
  # Temporary files may be left by SIGKILL, but never under a final name: every group file
  # present must be complete (the resume verifies each one).
  for f in "$tmp"/* "$dir"/*; do
    case $f in
      *.tmp-*) echo "$name: left temporary file $(basename "$f")" >&2 ;;
    esac
  done
  # Resume: every saved group is reused, the output equals the reference bit for bit.
  rm -f "$out"
  "$fipsc" compress "${args[@]}" -o "$out" --checkpoint-dir "$dir" --resume >"$tmp/$name.resume.out" \
    2>"$tmp/$name.resume.err" || fail "$name: resume exited $?: $(cat "$tmp/$name.resume.err")"
  local reused
  reused=$(grep -c "(from its checkpoint)" "$tmp/$name.resume.err" || true)
  [ "$reused" = "$had" ] || fail "$name: the resume reused $reused groups, $had were saved"
  cmp -s "$ref" "$out" || fail "$name: the resumed output differs from the uninterrupted run"
  [ "$(saved_count "$dir")" = 5 ] || fail "$name: after the resume $(saved_count "$dir") groups are saved"
  if ls "$dir" | grep -q '\.tmp-'; then fail "$name: the resume left temporary files in $dir: $(ls "$dir")"; fi
}

# A report without what differs between processes: times, the output path, memory.
report_sans_run() {
  node -e '
    const drop = new Set(["seconds", "calibration_seconds", "output", "peak_rss_bytes"]);
    const strip = v => Array.isArray(v) ? v.map(strip) : v && typeof v === "object"
      ? Object.fromEntries(Object.entries(v).filter(([k]) => !drop.has(k)).map(([k, x]) => [k, strip(x)])) : v;
    console.log(JSON.stringify(strip(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"))), null, 1));' "$1"
}

# (b) kills at several points.
killed_run kill0 0
killed_run kill1 1
killed_run kill3 3
# ... and its report (learning rate, losses, errors) is the uninterrupted run's but for the times
# and the memory.
"$fipsc" compress "${args[@]}" -o "$tmp/kill3.again.safetensors" --checkpoint-dir "$tmp/kill3.ckpt" \
  --resume --quiet --report "$tmp/kill3.json" || fail "kill3: second resume exited $?"
diff <(report_sans_run "$tmp/ref.json") <(report_sans_run "$tmp/kill3.json") >"$tmp/kill3.diff" ||
  fail "kill3: the resumed report differs: $(head -c 600 "$tmp/kill3.diff")"
killed_run killrand rand
killed_run kill5 5

# Untrained methods and several parts per group (svd: one basis per block), with the JSON report:
# a resumed run's report equals the uninterrupted one's but for the times and the output path.
for method in svd fips-init; do
  margs=("$model" --method "$method" --groups 0-1,2-4 --calib-samples 8 --calib-len 64 --threads 1 --quiet)
  d=$tmp/$method.ckpt
  "$fipsc" compress "${margs[@]}" -o "$tmp/$method.ref.safetensors" --report "$tmp/$method.ref.json"
  "$fipsc" compress "${margs[@]}" -o "$tmp/$method.a.safetensors" --checkpoint-dir "$d"
  rm -f "$d/group-001.safetensors"
  "$fipsc" compress "${margs[@]}" -o "$tmp/$method.b.safetensors" --checkpoint-dir "$d" --resume \
    --report "$tmp/$method.b.json" || fail "$method: resume exited $?"
  cmp -s "$tmp/$method.ref.safetensors" "$tmp/$method.b.safetensors" || fail "$method: resumed output differs"
  diff <(report_sans_run "$tmp/$method.ref.json") <(report_sans_run "$tmp/$method.b.json") >"$tmp/$method.diff" ||
    fail "$method: the resumed report differs: $(head -c 600 "$tmp/$method.diff")"
done

# A killed run's temporary checkpoint file (simulated) is removed by the resume and not used.
dir=$tmp/kill1.ckpt
rm -f "$dir/group-002.safetensors"
head -c 1000 "$dir/group-003.safetensors" >"$dir/group-002.safetensors.tmp-AbC123"
"$fipsc" compress "${args[@]}" -o "$tmp/left.safetensors" --checkpoint-dir "$dir" --resume --quiet ||
  fail "resume with a leftover temporary file exited $?"
cmp -s "$ref" "$tmp/left.safetensors" || fail "resume with a leftover temporary file: output differs"
[ ! -e "$dir/group-002.safetensors.tmp-AbC123" ] || fail "the leftover temporary file was not removed"

# expect_refused CODE MESSAGE ARGS...: the resume fails with CODE, says MESSAGE, writes no output.
expect_refused() {
  local want=$1 msg=$2
  shift 2
  local out=$tmp/refused.safetensors rc=0
  "$fipsc" compress "$@" -o "$out" >"$tmp/refused.out" 2>"$tmp/refused.err" || rc=$?
  [ "$rc" = "$want" ] || fail "compress $* exited $rc, expected $want: $(cat "$tmp/refused.err")"
  expect_in "$tmp/refused.err" "$msg"
  [ ! -e "$out" ] || fail "compress $* wrote $out"
  rm -f "$out"
}

# (c) a resume with other inputs is refused, naming the difference.
dir=$tmp/kill3.ckpt
expect_refused 1 "checkpoint $dir/group-000.safetensors was made with --budget 0.5, this run has --budget 0.4" \
  "${args[@]}" --checkpoint-dir "$dir" --resume --budget 0.4
# ... but another thread count is not (results do not depend on it): groups 0-1 saved on one
# thread, 2-4 computed on two, and the output is the reference's, bit for bit.
cp -r "$dir" "$tmp/threads.ckpt" && rm -f "$tmp/threads.ckpt"/group-00[234].safetensors
"$fipsc" compress "${args[@]}" --threads 2 -o "$tmp/threads2.safetensors" --checkpoint-dir "$tmp/threads.ckpt" \
  --resume 2>"$tmp/threads2.err" >/dev/null || fail "resume with --threads 2 exited $?: $(cat "$tmp/threads2.err")"
cmp -s "$ref" "$tmp/threads2.safetensors" || fail "a resume with --threads 2 differs from the run on one thread"
[ "$(grep -c "(from its checkpoint)" "$tmp/threads2.err" || true)" = 2 ] ||
  fail "resume with --threads 2: expected 2 groups reused: $(cat "$tmp/threads2.err")"
expect_refused 1 "was made with --seed 1, this run has --seed 7" \
  "${args[@]}" --checkpoint-dir "$dir" --resume --seed 7
expect_refused 1 "was made with --groups 0,1,2,3,4, this run has --groups 0,1,2,3" \
  "${args[@]}" --groups 0,1,2,3 --checkpoint-dir "$dir" --resume
expect_refused 1 "was made with calibration rows: 512 rows per block" \
  "${args[@]}" --calib-samples 7 --checkpoint-dir "$dir" --resume
# Another model file of the same shape: one weight of block 0's w1 (gate) changed. llama2.c layout:
# 28-byte header, then floats: embeddings 512·64, rms_att 5·64, wq 5·64·64, wk and wv 5·64·32 each,
# wo 5·64·64, rms_ffn 5·64, then w1 [5, 172, 64].
cp "$model" "$tmp/other.bin"
chmod u+w "$tmp/other.bin"
printf '\x3f' | dd of="$tmp/other.bin" bs=1 seek=$((28 + 4 * (32768 + 320 + 20480 + 10240 + 10240 + 20480 + 320) + 2)) \
  conv=notrunc status=none
cmp -s "$model" "$tmp/other.bin" && fail "the modified model equals the original"
oargs=("${args[@]}")
oargs[0]=$tmp/other.bin
expect_refused 1 "group-000.safetensors was made with model weights: hash" \
  "${oargs[@]}" --checkpoint-dir "$dir" --resume
# ... a fresh run into a directory holding checkpoints, and --resume without a directory: usage.
expect_refused 2 "already holds checkpoints" "${args[@]}" --checkpoint-dir "$dir"
expect_refused 2 "--resume needs --checkpoint-dir" "${args[@]}" --resume

# (d) a damaged checkpoint is an error naming the file (not silently recomputed); deleting the
# file recomputes that group.
f=$dir/group-001.safetensors
cp "$f" "$tmp/good-001"
size=$(stat -c %s "$f")
printf '\x5a' | dd of="$f" bs=1 seek=$((size - 100)) conv=notrunc status=none
expect_refused 1 "checkpoint $f is damaged (its contents hash to" "${args[@]}" --checkpoint-dir "$dir" --resume
expect_in "$tmp/refused.err" "delete it to recompute group 1"
# ... a changed digit in its report (the metadata is covered by the hash too)
cp "$tmp/good-001" "$f"
match=$(grep -boa 'final_loss[^0-9]*[0-9]\.[0-9]' "$f" | head -1)
[ -n "$match" ] || fail "no final_loss in $f"
text=${match#*:}
pos=$(( ${match%%:*} + ${#text} - 1 )) # the first decimal digit of the final loss
digit=$(dd if="$f" bs=1 skip="$pos" count=1 status=none)
printf '%s' "$(( (digit + 1) % 10 ))" | dd of="$f" bs=1 seek="$pos" conv=notrunc status=none
expect_refused 1 "checkpoint $f is damaged (its contents hash to" "${args[@]}" --checkpoint-dir "$dir" --resume
head -c $((size / 2)) "$tmp/good-001" >"$f"
expect_refused 1 "checkpoint $f is damaged" "${args[@]}" --checkpoint-dir "$dir" --resume
printf 'not a checkpoint' >"$f"
expect_refused 1 "checkpoint $f is damaged" "${args[@]}" --checkpoint-dir "$dir" --resume
rm -f "$f"
"$fipsc" compress "${args[@]}" -o "$tmp/recomputed.safetensors" --checkpoint-dir "$dir" --resume \
  2>"$tmp/recomputed.err" >/dev/null || fail "resume after deleting a damaged checkpoint exited $?"
cmp -s "$ref" "$tmp/recomputed.safetensors" || fail "resume after deleting a damaged checkpoint differs"
[ "$(grep -c "(from its checkpoint)" "$tmp/recomputed.err" || true)" = 4 ] ||
  fail "expected 4 groups reused, 1 recomputed: $(cat "$tmp/recomputed.err")"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "all compress resume checks passed"
