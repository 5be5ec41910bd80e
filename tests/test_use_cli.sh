#!/usr/bin/env bash
# The sentence-encoder commands end to end: import-tfjs, embed (text, file, formats, atomic -o)
# and eval-sts on the fetched Universal Sentence Encoder Lite, with their usage and input errors.
set -euo pipefail
: "${FIPSC_CLI:?run through ctest}" "${FIPSC_SOURCE_DIR:?}" "${FIPSC_BINARY_DIR:?}" "${FIPSC_SHARED_DIR:?}"
fipsc=$FIPSC_CLI
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_use_cli
model=$(use_model_dir)

# import-tfjs
expect 0 "$fipsc" import-tfjs "$model" -o "$tmp/use.safetensors"
grep -q "38 tensors" "$tmp/out" || fail "import-tfjs summary: $(cat "$tmp/out")"
[ -f "$tmp/use.safetensors" ] || fail "no $tmp/use.safetensors"
ls "$tmp" | grep -q tmp && fail "a temporary file was left behind: $(ls "$tmp")"
expect 0 "$fipsc" import-tfjs "$model/model.json" -o "$tmp/use2.safetensors"
cmp -s "$tmp/use.safetensors" "$tmp/use2.safetensors" || fail "importing DIR and DIR/model.json differ"
expect 2 "$fipsc" import-tfjs "$model"
expect_err "missing -o"
expect 2 "$fipsc" import-tfjs -o "$tmp/x.safetensors"
expect_err "missing DIR"
expect 1 "$fipsc" import-tfjs "$tmp/nonexistent" -o "$tmp/x.safetensors"
expect_err "nonexistent: no such file"
[ -e "$tmp/x.safetensors" ] && fail "a failed import wrote its output"
expect 0 "$fipsc" import-tfjs --help
grep -q "Usage: fipsc import-tfjs" "$tmp/out" || fail "import-tfjs --help"

# embed: one line of 512 numbers per sentence; the TF.js directory and the import agree exactly
expect 0 "$fipsc" embed "$tmp/use.safetensors" --text "A man is playing a guitar." --text "" --text "Ünïcödé ☃"
[ "$(wc -l <"$tmp/out")" -eq 3 ] || fail "embed printed $(wc -l <"$tmp/out") lines, expected 3"
awk 'NF != 512 { bad = 1 } END { exit bad }' "$tmp/out" || fail "embed lines do not all have 512 numbers"
cp "$tmp/out" "$tmp/from-import.txt"
expect 0 "$fipsc" embed "$model" --text "A man is playing a guitar." --text "" --text "Ünïcödé ☃"
cmp -s "$tmp/out" "$tmp/from-import.txt" || fail "embeddings from the TF.js model and its import differ"
# unit length
awk '{ s = 0; for (i = 1; i <= NF; i++) s += $i * $i; if (s < 0.9999 || s > 1.0001) bad = 1 } END { exit bad }' \
  "$tmp/out" || fail "embeddings are not unit vectors"
# --file: CRLF lines, an empty line in the middle, no extra sentence after the final line end
printf 'A man is playing a guitar.\r\n\r\nÜnïcödé ☃\r\n' >"$tmp/sentences.txt"
expect 0 "$fipsc" embed "$model" --file "$tmp/sentences.txt" -o "$tmp/emb.txt"
cmp -s "$tmp/emb.txt" "$tmp/from-import.txt" || fail "--file -o output differs from --text output"
expect 0 "$fipsc" embed "$model" --file - -o "$tmp/emb-stdin.txt" <"$tmp/sentences.txt"
cmp -s "$tmp/emb-stdin.txt" "$tmp/from-import.txt" || fail "--file - (standard input) differs"
expect 0 "$fipsc" embed "$model" --file "$tmp/sentences.txt" --format f32 -o "$tmp/emb.f32"
# the same bits with one thread as with several, also over many chunks
for i in $(seq 1 200); do echo "Sentence number $i is here to make several chunks of tokens."; done >"$tmp/many.txt"
expect 0 "$fipsc" embed "$model" --file "$tmp/many.txt" --format f32 -o "$tmp/many2.f32" --threads 2
expect 0 "$fipsc" embed "$model" --file "$tmp/many.txt" --format f32 -o "$tmp/many1.f32" --threads 1
cmp -s "$tmp/many1.f32" "$tmp/many2.f32" || fail "embed --threads 1 and --threads 2 differ"
[ "$(stat -c %s "$tmp/emb.f32")" -eq $((3 * 512 * 4)) ] || fail "f32 output has $(stat -c %s "$tmp/emb.f32") bytes"
expect 0 "$fipsc" embed "$model" --text "x" --format json --threads 1
head -c 3 "$tmp/out" | grep -q '^\[' || fail "json output does not start with ["
[ "$(grep -o ',' "$tmp/out" | wc -l)" -eq 511 ] || fail "json output does not hold 512 numbers"
# usage errors (2) and failures (1)
expect 2 "$fipsc" embed "$model"
expect_err "nothing to embed"
expect 2 "$fipsc" embed "$model" --text a --file "$tmp/sentences.txt"
expect_err "either --text or --file"
expect 2 "$fipsc" embed "$model" --text a --format f32
expect_err "give -o OUT"
expect 2 "$fipsc" embed "$model" --text a --format xml
expect 2 "$fipsc" embed "$model" --text a --threads 0
expect 2 "$fipsc" embed --text a
expect_err "missing MODEL"
expect 2 "$fipsc" embed "$model" --bogus
expect_err "unknown option"
expect 1 "$fipsc" embed "$model" --file "$tmp/no-such-file.txt" -o "$tmp/never.txt"
expect_err "no-such-file.txt"
[ -e "$tmp/never.txt" ] && fail "a failed embed wrote its output"
expect 1 "$fipsc" embed "$FIPSC_SOURCE_DIR/models/stories260K.bin" --text a
expect_err "not a sentence encoder"

# eval-sts on the small committed file (the client's own numbers are checked by test_use_sts)
expect 0 "$fipsc" eval-sts "$tmp/use.safetensors" "$FIPSC_SOURCE_DIR/tests/data/sts-small.tsv"
grep -q "24 pairs, Spearman 0\.[0-9]*, Pearson 0\.[0-9]*" "$tmp/out" || fail "eval-sts output: $(cat "$tmp/out")"
expect 0 "$fipsc" eval-sts "$model" "$FIPSC_SOURCE_DIR/tests/data/sts-small.tsv" --json
grep -q '^{"pairs": 24, "spearman": 0\.[0-9]*, "pearson": 0\.[0-9]*}$' "$tmp/out" || fail "eval-sts --json: $(cat "$tmp/out")"
# STS-B dev as is, and with the CRs kept the way the JavaScript client reads it
# (scripts/sts-keep-cr, used by scripts/results-use): the client's two numbers (tests/data/use-golden.json)
dev="$FIPSC_SHARED_DIR/data/sts-b-dev.tsv"
# Within 1e-4, not digit for digit: two nearly tied cosines may swap ranks under another CPU's
# rounding, which moves Spearman by a few 1e-6 (and 0.783869 is 5e-8 from a rounding boundary).
sts_near() { # LABEL SPEARMAN PEARSON: the --json output in $tmp/out has 1500 pairs and these values
  node -e '
    const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
    const [s, p] = [Number(process.argv[2]), Number(process.argv[3])];
    if (r.pairs !== 1500 || !(Math.abs(r.spearman - s) <= 1e-4) || !(Math.abs(r.pearson - p) <= 1e-4))
      throw new Error(JSON.stringify(r));' "$tmp/out" "$2" "$3" 2>/dev/null || fail "$1: $(cat "$tmp/out"), expected $2 / $3"
}
expect 0 "$fipsc" eval-sts "$tmp/use.safetensors" "$dev" --json
sts_near "eval-sts on STS-B dev" 0.783869 0.782647
bash "$FIPSC_SOURCE_DIR/scripts/sts-keep-cr" "$dev" >"$tmp/dev-cr.tsv"
expect 0 "$fipsc" eval-sts "$tmp/use.safetensors" "$tmp/dev-cr.tsv" --json
sts_near "eval-sts on STS-B dev with the CRs kept" 0.773213 0.776175
printf 'g\tf\t2012\t1\t4.5\tA cat.\n' >"$tmp/bad.tsv"
expect 1 "$fipsc" eval-sts "$model" "$tmp/bad.tsv"
expect_err "line 1 has 6 tab-separated columns"
expect 1 "$fipsc" eval-sts "$FIPSC_SOURCE_DIR/models/stories260K.bin" "$FIPSC_SOURCE_DIR/tests/data/sts-small.tsv"
expect_err "is not a sentence encoder"
expect 2 "$fipsc" eval-sts "$model"
expect_err "expects MODEL and FILE.tsv"

test_end
