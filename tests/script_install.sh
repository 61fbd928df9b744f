#!/usr/bin/env bash
# libember as others link it: `cmake --install` into a fresh prefix, then
#   - both libraries export ember_* symbols only (nm);
#   - examples/nearest_pair.c builds with `pkg-config --cflags --libs ember`
#     (the shared library) and statically (libember.a), and both find the
#     pair of lines that all-MiniLM-L6-v2 puts closest, with the score the
#     ember program computes for it.
# $1: the ember binary (its folder is the build tree).
set -u
EMBER=$(realpath "$1")
BUILD=$(dirname "$EMBER")
cd "$(dirname "$0")/.."
MODEL=weights/all-MiniLM-L6-v2
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ ! -f "$MODEL/model.safetensors" ]; then
    if [ "${EMBER_REQUIRE_WEIGHTS:-0}" = 1 ]; then fail "$MODEL is missing"; fi
    echo "skip: $MODEL is missing (weights/fetch.sh)"; exit 77
fi
command -v pkg-config > /dev/null && command -v cc > /dev/null || fail "cc and pkg-config are needed (tools/install-deps.sh)"
T=$(mktemp -d /tmp/ember-test-install-XXXXXX)
trap 'rm -rf "$T"' EXIT

cmake --install "$BUILD" --prefix "$T/prefix" > "$T/install.log" 2>&1 || fail "cmake --install: $(tail -5 "$T/install.log")"
LIB=$(dirname "$(find "$T/prefix" -name libember.so | head -1)")
[ -n "$LIB" ] && [ -f "$LIB/libember.a" ] && [ -f "$LIB/pkgconfig/ember.pc" ] && [ -f "$T/prefix/include/ember.h" ] ||
    fail "install: $(cd "$T/prefix" && find . -type f | head -20)"

# ---- only ember_* outside -------------------------------------------------------------------
others=$(nm -D --defined-only "$LIB/libember.so" | awk 'NF == 3 { print $3 }' | grep -v '^ember_')
[ -z "$others" ] || fail "libember.so exports more than ember_*: $(echo "$others" | head -10 | tr '\n' ' ')"
nm -D --defined-only "$LIB/libember.so" | grep -q ' T ember_embed_file$' || fail "libember.so lacks ember_embed_file"
others=$(nm -g --defined-only "$LIB/libember.a" | awk 'NF == 3 { print $3 }' | grep -v '^ember_')
[ -z "$others" ] || fail "libember.a defines more than ember_* globally: $(echo "$others" | head -10 | tr '\n' ' ')"
n_api=$(nm -g --defined-only "$LIB/libember.a" | grep -c ' T ember_')
[ "$n_api" -ge 30 ] || fail "libember.a exports $n_api ember_* functions"
echo "ok - both libraries export ember_* only ($n_api functions)"

# ---- a program built against the installed library ----------------------------------------------
export PKG_CONFIG_PATH="$LIB/pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Werror examples/nearest_pair.c $(pkg-config --cflags --libs ember) -o "$T/np_shared" \
    2> "$T/cc.log" || fail "cc with pkg-config: $(cat "$T/cc.log")"
static_libs="-L$LIB -l:libember.a $(pkg-config --variable=static_deps ember) $(pkg-config --libs libutf8proc jansson libmicrohttpd zlib libcurl)"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Werror examples/nearest_pair.c $(pkg-config --cflags ember) $static_libs -o "$T/np_static" \
    2> "$T/cc.log" || fail "cc with libember.a: $(cat "$T/cc.log")"
ldd "$T/np_static" | grep -q libember && fail "the static build still needs libember.so"
printf '%s\n' "the cat sat on the mat" "stock markets fell sharply today" "a kitten is sitting on a rug" \
    "I would like a pizza for dinner" > "$T/lines.txt"
LD_LIBRARY_PATH="$LIB" "$T/np_shared" "$MODEL" "$T/lines.txt" > "$T/shared.out" || fail "nearest_pair (shared)"
"$T/np_static" "$MODEL" "$T/lines.txt" > "$T/static.out" || fail "nearest_pair (static)"
cmp -s "$T/shared.out" "$T/static.out" || fail "shared and static builds differ: $(cat "$T/shared.out" "$T/static.out")"
# the pair and the score, from the ember program's vectors
"$EMBER" embed -m "$MODEL" -q "$T/lines.txt" > "$T/vecs.jsonl" || fail "ember embed"
python3 - "$T/vecs.jsonl" "$T/lines.txt" "$T/shared.out" <<'PY' || fail "nearest_pair disagrees with ember embed: $(cat "$T/shared.out")"
import json, math, sys
vecs = [json.loads(l) for l in open(sys.argv[1])]
lines = open(sys.argv[2]).read().splitlines()
score, a, b = open(sys.argv[3]).read().rstrip("\n").split("\t")
cos = lambda u, v: sum(x * y for x, y in zip(u, v)) / math.sqrt(sum(x * x for x in u) * sum(y * y for y in v))
best = max((cos(vecs[i], vecs[j]), i, j) for i in range(len(vecs)) for j in range(i + 1, len(vecs)))
assert {a, b} == {lines[best[1]], lines[best[2]]} == {lines[0], lines[2]}, (a, b, best)
assert abs(float(score) - best[0]) < 1e-4, (score, best[0])
PY
echo "ok - examples/nearest_pair.c against the installed library, shared and static: $(cut -f1 "$T/shared.out")"
