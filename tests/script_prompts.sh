#!/usr/bin/env bash
# Prompts on the command line: ember embed --prompt/--prompt-name (and the
# model's default_prompt_name) against sentence-transformers' vectors of
# tools/make_tiny_st_prompts.py, include_prompt false, ember search's query
# prompt, the errors, and a resume that changes the prompt.
# usage: tests/script_prompts.sh path/to/ember     (run from the repository root)
set -u
EMBER=${1:?usage: $0 path/to/ember}
M=tests/data/tiny-st-prompts
X=tests/data/tiny-st-prompts-exclude
REF=tests/data/tiny-st-prompts-ref
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }
command -v python3 >/dev/null || { echo "skip: python3 is missing"; exit 77; }

# expect <description> <wanted exit status> <regex the output must match> -- command...
expect() {
  local what=$1 want=$2 pattern=$3
  shift 4
  local out rc
  out=$("$@" 2>&1)
  rc=$?
  if [ "$rc" != "$want" ]; then
    fail "$what: exit $rc, wanted $want; output: $(echo "$out" | head -5)"
  elif [ -n "$pattern" ] && ! echo "$out" | grep -Eq -- "$pattern"; then
    fail "$what: output does not match /$pattern/: $(echo "$out" | head -5)"
  else
    ok "$what"
  fi
}

# same_as <got.npy> <ref.npy>: every row's cosine >= 0.99999 (float32 .npy, standard library only)
same_as() { python3 - "$1" "$2" <<'PY'
import ast, math, struct, sys
def rows(path):
    data = open(path, "rb").read()
    hl = struct.unpack("<H", data[8:10])[0]
    hdr = ast.literal_eval(data[10:10 + hl].decode())
    assert hdr["descr"] == "<f4", hdr
    r, c = hdr["shape"]
    flat = struct.unpack("<%df" % (r * c), data[10 + hl:])
    return [flat[i * c:(i + 1) * c] for i in range(r)]
a, b = rows(sys.argv[1]), rows(sys.argv[2])
assert len(a) == len(b), (len(a), len(b))
worst = min(sum(x * y for x, y in zip(u, v)) / math.sqrt(sum(x * x for x in u) * sum(y * y for y in v)) for u, v in zip(a, b))
print("lowest cosine %.8f" % worst)
sys.exit(0 if worst >= 0.99999 else 1)
PY
}

python3 -c 'import json,sys; print("\n".join(json.load(open(sys.argv[1]))["texts"]))' "$REF/texts.json" > "$tmp/texts.txt"

# embed_case <model dir> <case> [options...]: ember embed's vectors against <model>.<case>.npy
embed_case() {
  local dir=$1 cas=$2
  shift 2
  local out="$tmp/$(basename "$dir").$cas.npy"
  if ! "$EMBER" embed -q -m "$dir" -o "$out" "$@" "$tmp/texts.txt" 2>"$tmp/err"; then
    fail "embed $(basename "$dir") $cas $*: $(head -3 "$tmp/err")"
  elif r=$(same_as "$out" "$REF/$(basename "$dir").$cas.npy"); then
    ok "embed $(basename "$dir") $* = sentence-transformers' $cas ($r)"
  else
    fail "embed $(basename "$dir") $* differs from sentence-transformers' $cas ($r)"
  fi
}

embed_case $M default
embed_case $M query --prompt-name query
embed_case $M passage --prompt-name passage
embed_case $M none --prompt ""
embed_case $M none --prompt-name empty
embed_case $M custom --prompt "Represent this sentence for searching relevant passages: "
embed_case $X default
embed_case $X query --prompt-name query
embed_case $X passage --prompt-name passage
embed_case $X custom --prompt "Represent this sentence for searching relevant passages: " --prompt-name query

expect "embed: an unknown prompt name is named, with the model's prompts" 1 \
  "unknown prompt name 'quary': the model's prompts are document, empty, passage, query" -- \
  "$EMBER" embed -q -m $M --prompt-name quary -o "$tmp/bad.npy" "$tmp/texts.txt"
[ ! -e "$tmp/bad.npy" ] && ok "embed: no output for an unknown prompt name" || fail "embed wrote $tmp/bad.npy"
expect "embed: a model with no prompts says so" 1 "no prompts" -- \
  "$EMBER" embed -q -m tests/data/tiny-bert --prompt-name query -o "$tmp/bad.npy" "$tmp/texts.txt"
expect "embed: --prompt with --tokens is refused" 2 "do not go with --tokens" -- \
  "$EMBER" embed -q -m $M --tokens --prompt "x: " -o "$tmp/t.npy" "$tmp/texts.txt"
expect "embed --help shows --prompt-name" 0 "--prompt-name NAME" -- "$EMBER" embed --help

# a resumed run keeps its prompt: the manifest records it
"$EMBER" embed -q -m $M --prompt-name passage --shard-rows 2 -o "$tmp/shards" "$tmp/texts.txt" 2>/dev/null
expect "embed: the manifest records the prompt" 0 '"prompt": "passage: "' -- cat "$tmp/shards/manifest.json"
expect "embed --resume with another prompt is refused" 1 "prompt" -- \
  "$EMBER" embed -q -m $M --prompt-name query --shard-rows 2 --resume -o "$tmp/shards" "$tmp/texts.txt"
expect "embed --resume with the same prompt is fine" 0 "" -- \
  "$EMBER" embed -q -m $M --prompt-name passage --shard-rows 2 --resume -o "$tmp/shards" "$tmp/texts.txt"

# ember search: the prompt goes before the queries
printf 'the quick brown fox\nHello, World!\ncafé déjà vu\n' > "$tmp/corpus.txt"
expect "search --prompt-name" 0 "fox" -- "$EMBER" search -m $X -c "$tmp/corpus.txt" -q "brown fox" --prompt-name query
expect "search: an unknown prompt name is named" 1 "'quary'" -- \
  "$EMBER" search -m $M -c "$tmp/corpus.txt" -q "fox" --prompt-name quary
a=$("$EMBER" search -m $X -c "$tmp/corpus.txt" -q "brown fox" --json --prompt "" 2>&1)
b=$("$EMBER" search -m $X -c "$tmp/corpus.txt" -q "brown fox" --json --prompt-name query 2>&1)
[ -n "$a" ] && [ "$a" != "$b" ] && ok "search: the query's prompt changes its scores" || fail "search: same scores with and without a prompt: $a"
expect "search --help shows --prompt" 0 "--prompt TEXT" -- "$EMBER" search --help
expect "info lists the prompts and the default" 0 "^prompts +document, empty, passage, query \(default query\)" -- \
  "$EMBER" info -m $M
expect "info says include_prompt false" 0 "left out of pooling" -- "$EMBER" info -m $X
expect "serve --help shows --default-prompt-name" 0 "--default-prompt-name" -- "$EMBER" serve --help

echo "$fails failed"
[ "$fails" = 0 ]
