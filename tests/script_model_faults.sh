#!/usr/bin/env bash
# Broken model files as the `ember` program reports them (the library's side
# is tests/test_loader.c): a NaN weight is a warning on stderr naming the
# tensor (the library prints nothing: it reaches stderr through the log the
# program installs), and the load goes on; a broken file is an error naming
# it, with a non-zero exit.
# $1: the ember binary. Uses the tiny BERT (tests/data/tiny-bert or $EMBER_TINY_MODEL).
set -u
EMBER=${1:?usage: script_model_faults.sh path/to/ember}
MODEL=${EMBER_TINY_MODEL:-tests/data/tiny-bert}
if [ ! -f "$MODEL/config.json" ]; then
    if [ "${EMBER_REQUIRE_WEIGHTS:-0}" = 1 ]; then echo "FAIL: $MODEL is missing" >&2; exit 1; fi
    echo "skip: $MODEL is missing (tools/make_tiny_bert.py, or set EMBER_TINY_MODEL)"
    exit 77
fi
command -v jq > /dev/null || { echo "skip: jq is missing (it reads the safetensors header)"; exit 77; }
T=$(mktemp -d /tmp/ember-test-model-faults-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# ---- a NaN in one weight: a warning naming it, then the load goes on ------------------
cp -r "$MODEL" "$T/nan"
st="$T/nan/model.safetensors"
hlen=$(od -An -t u8 -N 8 "$st" | tr -d ' ')
tensor=bert.encoder.layer.0.attention.self.key.weight
dtype=$(tail -c +9 "$st" | head -c "$hlen" | jq -r ".\"$tensor\".dtype")
off=$(tail -c +9 "$st" | head -c "$hlen" | jq ".\"$tensor\".data_offsets[0]")
case $dtype in # element 3 := NaN, little-endian
    F32) printf '\000\000\300\177' | dd of="$st" bs=1 seek=$((8 + hlen + off + 12)) conv=notrunc 2> /dev/null ;;
    F16) printf '\000\176' | dd of="$st" bs=1 seek=$((8 + hlen + off + 6)) conv=notrunc 2> /dev/null ;;
    BF16) printf '\300\177' | dd of="$st" bs=1 seek=$((8 + hlen + off + 6)) conv=notrunc 2> /dev/null ;;
    *) fail "$tensor has dtype '$dtype'" ;;
esac
"$EMBER" info -m "$MODEL" > /dev/null 2> "$T/clean.err" || fail "info on the clean model: $(cat "$T/clean.err")"
grep -q 'warning' "$T/clean.err" && fail "a warning for clean weights: $(cat "$T/clean.err")"
"$EMBER" info -m "$T/nan" > "$T/nan.out" 2> "$T/nan.err" || fail "info with a NaN weight failed: $(cat "$T/nan.err")"
grep -q "^ember: warning: $st: tensor '$tensor' holds 1 NaN/Inf value (the first at element 3)" "$T/nan.err" ||
    fail "no warning naming the tensor: $(cat "$T/nan.err")"
echo hello | "$EMBER" embed -m "$T/nan" - -q 2> "$T/nan-embed.err" > "$T/nan.jsonl"
grep -q "warning: .*'$tensor' holds 1 NaN/Inf" "$T/nan-embed.err" || fail "embed: no warning: $(cat "$T/nan-embed.err")"
# the NaN reaches the vector; JSONL stays JSON (null where a number cannot be written)
jq -e 'length > 0' "$T/nan.jsonl" > /dev/null || fail "embed's JSONL with a NaN weight is not JSON: $(head -c 200 "$T/nan.jsonl")"

# ---- broken files: an error naming the file and the problem, exit status non-zero ---------
broken() { # label pattern command-on-the-copy
    local d="$T/broken"
    rm -rf "$d" && cp -r "$MODEL" "$d"
    (cd "$d" && eval "$3") || fail "$1: could not break it"
    "$EMBER" info -m "$d" > /dev/null 2> "$T/b.err" && fail "$1: loaded"
    grep -q -- "ember: error: cannot load model: .*$2" "$T/b.err" || fail "$1: stderr lacks '$2': $(cat "$T/b.err")"
}
broken "truncated weights" "model.safetensors: tensor '.*' has data offsets .* (truncated download?)" \
    'head -c $(($(stat -c %s model.safetensors) / 2)) model.safetensors > x && mv x model.safetensors'
broken "config, absurd size" "config.json: 'hidden_size' is 99999999, outside" \
    'sed -i "s/\"hidden_size\": [0-9]*/\"hidden_size\": 99999999/" config.json'
broken "config as a directory" "config.json: is a directory, not a file" 'rm config.json && mkdir config.json'
broken "weights as a directory" "model.safetensors: is a directory, not a file" \
    'rm model.safetensors && mkdir model.safetensors'
broken "weights as a FIFO" "model.safetensors: not a regular file" 'rm model.safetensors && mkfifo model.safetensors'
echo "ok"
