#!/usr/bin/env bash
# The library as another program sees it: `cmake --install` into a scratch prefix, then
# examples/compress_model.c built with only the installed header, shared library and pkg-config
# file, and run on stories260K. Checks: the installed tree; the shared library exports exactly the
# functions include/fipsc.h declares; the example's compressed file is byte for byte what
# `fipsc compress` writes with the same settings; API errors arrive as messages.
set -uo pipefail
fipsc=$FIPSC_CLI
. "$FIPSC_SOURCE_DIR/tests/lib.sh"
test_begin test_install_example
src=$FIPSC_SOURCE_DIR
[ -f "$FIPSC_BINARY_DIR/libfipsc.so" ] || { echo "skipped: this build has no shared library"; exit 77; }

prefix=$tmp/prefix
expect 0 cmake --install "$FIPSC_BINARY_DIR" --prefix "$prefix"
pc=$(find "$prefix" -name fipsc.pc | head -n 1)
for f in bin/fipsc include/fipsc.h; do [ -f "$prefix/$f" ] || fail "not installed: $f"; done
[ -n "$pc" ] || fail "not installed: fipsc.pc"
libdir=$(dirname "$(dirname "$pc")")
for f in libfipsc.so libfipsc.a; do [ -e "$libdir/$f" ] || fail "not installed: $libdir/$f"; done

# Exactly the public API is exported: every FIPSC_API function of the header, nothing else.
grep -o 'FIPSC_API [^(]*(' "$prefix/include/fipsc.h" | grep -o 'fipsc_[a-z0-9_]*($' | tr -d '(' | sort >"$tmp/declared"
nm -D --defined-only "$libdir/libfipsc.so" | awk '$2 == "T" { print $3 }' | sort >"$tmp/exported"
[ "$(wc -l <"$tmp/declared")" -ge 25 ] || fail "found only $(wc -l <"$tmp/declared") declarations in fipsc.h"
diff "$tmp/declared" "$tmp/exported" >"$tmp/symbols.diff" || fail "exports differ from fipsc.h: $(cat "$tmp/symbols.diff")"

# Build the example against the installed tree only (no -I into the source tree).
export PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --cflags --libs fipsc) || fail "pkg-config cannot read $pc"
# shellcheck disable=SC2086 # the flags are words
expect 0 cc -std=c17 -Wall -Wextra -Werror ${FIPSC_EXAMPLE_CFLAGS:-} "$src/examples/compress_model.c" -o "$tmp/compress_model" \
  $flags -Wl,-rpath,"$libdir"
[ -x "$tmp/compress_model" ] || { test_end; exit 1; }

settings=(budget=0.5 steps=60 calib-samples=8 calib-len=64)
expect 0 "$tmp/compress_model" "$src/models/stories260K.bin" "$tmp/api.safetensors" "${settings[@]}"
expect_out "family llama"
expect_out "MLP parameters"
grep -q '^original ' "$tmp/out" && grep -q '^compressed ' "$tmp/out" || fail "no generations: $(cat "$tmp/out")"
cp "$tmp/out" "$tmp/example.out"
expect 0 "$fipsc" compress "$src/models/stories260K.bin" -o "$tmp/cli.safetensors" --budget 0.5 --steps 60 \
  --calib-samples 8 --calib-len 64 --quiet
cmp -s "$tmp/api.safetensors" "$tmp/cli.safetensors" || fail "the API and the CLI wrote different files"

# Errors come back as messages, and nothing is written.
expect 2 "$tmp/compress_model" "$src/models/stories260K.bin" "$tmp/x.safetensors" budget=abc
expect_err "budget expects a number in (0, 1], got 'abc'"
expect 1 "$tmp/compress_model" "$src/models/stories260K.bin" "$tmp/x.safetensors" budget=2
expect_err "budget 2 is not in (0, 1]"
expect 2 "$tmp/compress_model" "$src/models/stories260K.bin" "$tmp/x.safetensors" colour=blue
expect_err "unknown compression setting 'colour'"
expect 1 "$tmp/compress_model" "$src/models/stories260K.bin" "$tmp/x.safetensors" calib-images="$tmp"
expect_err "image classifiers only"
expect 1 "$tmp/compress_model" "$tmp/missing.bin" "$tmp/x.safetensors"
expect_err "missing.bin"
[ ! -e "$tmp/x.safetensors" ] || fail "a failed run left $tmp/x.safetensors"
test_end
