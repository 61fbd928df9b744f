#!/usr/bin/env bash
# The `ember` program end to end: help, errors, embed/tokenize/search/info, and
# the README's seed demo against sentence-transformers' scores.
# usage: tests/script_cli.sh path/to/ember     (run from the repository root)
set -u
EMBER=${1:?usage: $0 path/to/ember}
TINY=tests/data/tiny-bert
MINILM=weights/all-MiniLM-L6-v2
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fails=0
ok() { echo "ok - $*"; }
fail() { echo "FAIL - $*"; fails=$((fails + 1)); }

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

# rows and columns of a .npy file, and row i as text
npy() { python3 - "$@" <<'PY'
import struct, sys, ast
path, what = sys.argv[1], sys.argv[2]
data = open(path, "rb").read()
assert data[:6] == b"\x93NUMPY", "not npy"
hl = struct.unpack("<H", data[8:10])[0]
hdr = ast.literal_eval(data[10:10 + hl].decode())
rows, cols = hdr["shape"]
fmt = {"<f4": "f", "<f2": "e"}[hdr["descr"]]
size = {"f": 4, "e": 2}[fmt]
body = data[10 + hl:]
assert len(body) == rows * cols * size, "size mismatch"
if what == "shape":
    print(rows, cols)
else:
    i = int(what)
    print(" ".join("%.6f" % x for x in struct.unpack("<%d%s" % (cols, fmt), body[i * cols * size:(i + 1) * cols * size])))
PY
}

expect "ember --help" 0 "embed" -- "$EMBER" --help
expect "ember with no command" 2 "usage" -- "$EMBER"
expect "unknown command" 2 "unknown command 'frobnicate'" -- "$EMBER" frobnicate
for c in embed search tokenize info bench serve; do
  expect "ember $c --help" 0 "usage: ember $c" -- "$EMBER" "$c" --help
done
expect "--version" 0 "^ember [0-9]" -- "$EMBER" --version

# errors name the input and the problem
expect "missing model directory" 1 "/no/such/model.*not found" -- "$EMBER" info --model /no/such/model
expect "missing input file" 1 "/no/such/file.txt: cannot open" -- "$EMBER" embed --model $TINY /no/such/file.txt
expect "bad --device" 2 "--device: the device must be cpu, cuda, cuda:N" -- "$EMBER" info --model $TINY --device tpu
expect "bad --threads" 2 "--threads must be an integer" -- "$EMBER" info --model $TINY --threads zero
expect ".npy to stdout refused" 2 "needs a file" -- "$EMBER" embed --model $TINY --format npy /dev/null
expect "search without a corpus" 2 "give --vectors PATH or --corpus FILE" -- "$EMBER" search --model $TINY -q x
expect "cuda without a device" 1 "CUDA|cuda" -- "$EMBER" info --model $TINY --device cuda
expect "fp16 on the CPU" 1 "fp32 only" -- "$EMBER" info --model $TINY --dtype fp16

expect "info on the tiny model" 0 "2 layers, hidden 64" -- "$EMBER" info --model $TINY
expect "info lists the architectures ember runs" 0 "ember runs +bert \\(BertModel.*mpnet \\(MPNetModel" -- "$EMBER" info --model $TINY
expect "info on the tiny MPNet" 0 "architecture +mpnet: 2 layers" -- "$EMBER" info --model "$(dirname "$TINY")/tiny-mpnet"
# an architecture ember does not run: refused, naming its model_type and what ember runs
mkdir -p "$tmp/xlmr"
cp "$TINY"/* "$tmp/xlmr/"
sed -i 's/"model_type": "bert"/"model_type": "xlm-roberta"/; s/"BertModel"/"XLMRobertaModel"/' "$tmp/xlmr/config.json"
expect "info refuses XLM-RoBERTa" 1 "model_type 'xlm-roberta' \\(XLMRobertaModel\\) is not supported; ember runs bert.*mpnet" -- "$EMBER" info --model "$tmp/xlmr"

# embed: every line gives a row, in order; empty, invalid and over-long lines are counted
{
  printf 'the quick brown fox\n'
  printf '\n'
  printf 'caf\xe9 au lait\n'
  for i in $(seq 200); do printf 'word%d ' "$i"; done
  printf '\n'
  printf 'last line without newline'
} > "$tmp/in.txt"
expect "embed text to npy" 0 "5 rows" -- "$EMBER" embed --model $TINY "$tmp/in.txt" -o "$tmp/out.npy"
out=$("$EMBER" embed --model $TINY "$tmp/in.txt" -o "$tmp/out.npy" 2>&1)
echo "$out" | grep -q "1 empty lines" && ok "empty line reported" || fail "empty line not reported: $out"
echo "$out" | grep -q "1 texts truncated to 64 tokens (first: row 4)" && ok "truncation reported" || fail "truncation not reported: $out"
echo "$out" | grep -q "invalid UTF-8.*(first: row 3)" && ok "invalid UTF-8 reported" || fail "invalid UTF-8 not reported: $out"
[ "$(npy "$tmp/out.npy" shape)" = "5 64" ] && ok "npy shape 5x64" || fail "npy shape $(npy "$tmp/out.npy" shape)"

# two rows equal to 1e-5 (a row may round differently in a batch of another size)
same_row() { python3 -c 'import sys; a=list(map(float,sys.argv[1].split())); b=list(map(float,sys.argv[2].split())); sys.exit(0 if len(a)==len(b) and max(abs(x-y) for x,y in zip(a,b)) <= 1e-5 else 1)' "$1" "$2"; }

# the same rows one at a time, and through JSONL, gzip and stdin
printf 'the quick brown fox\n' | "$EMBER" embed --model $TINY -q -o "$tmp/one.npy" -
same_row "$(npy "$tmp/one.npy" 0)" "$(npy "$tmp/out.npy" 0)" && ok "stdin row equals file row" || fail "stdin row differs"
printf '{"id": 1, "body": "the quick brown fox"}\n{"id": 2, "body": ""}\n' > "$tmp/in.jsonl"
expect "embed JSONL with --field" 0 "2 rows" -- "$EMBER" embed --model $TINY --field body "$tmp/in.jsonl" -o "$tmp/j.npy"
same_row "$(npy "$tmp/j.npy" 0)" "$(npy "$tmp/out.npy" 0)" && ok "JSONL row equals text row" || fail "JSONL row differs"
gzip -c "$tmp/in.txt" > "$tmp/in.txt.gz"
"$EMBER" embed --model $TINY -q "$tmp/in.txt.gz" -o "$tmp/gz.npy"
cmp -s "$tmp/gz.npy" "$tmp/out.npy" && ok ".gz input gives the same file" || fail ".gz input differs"
"$EMBER" embed --model $TINY -q "$tmp/in.txt" --format jsonl > "$tmp/out.jsonl"
[ "$(wc -l < "$tmp/out.jsonl")" = 5 ] && ok "JSONL output has 5 lines" || fail "JSONL output lines: $(wc -l < "$tmp/out.jsonl")"
"$EMBER" embed --model $TINY -q "$tmp/in.txt" -o "$tmp/out16.npy" --format npy16
[ "$(npy "$tmp/out16.npy" shape)" = "5 64" ] && ok "float16 npy" || fail "float16 npy shape"
printf '{"body": "x"}\nnot json\n' > "$tmp/bad.jsonl"
expect "malformed JSONL names the line" 1 "bad.jsonl:2: malformed JSON" -- "$EMBER" embed --model $TINY --field body "$tmp/bad.jsonl" -o "$tmp/bad.npy"
printf '{"text": 5}\n' > "$tmp/bad2.jsonl"
expect "non-string field" 1 "bad2.jsonl:1: the text field is not a string" -- "$EMBER" embed --model $TINY "$tmp/bad2.jsonl" -o "$tmp/bad.npy"
expect "--no-truncate refuses an over-long line" 1 "in.txt:4: the text is .* tokens long" -- "$EMBER" embed --model $TINY --no-truncate "$tmp/in.txt" -o "$tmp/x.npy"

# tokenize: the tiny vocabulary's ids, byte offsets
expect "tokenize ids" 0 "^2 182 173 149 160 163 171 182 164 151 3$" -- "$EMBER" tokenize --model $TINY --ids "the quick brown fox jumps over the lazy dog"
expect "tokenize JSON with offsets" 0 '"offsets": \[\[0, 0\], \[0, 5\]' -- "$EMBER" tokenize --model $TINY "Hello, World!"

# bench: a quick pass on the tiny model gives a table and well-formed JSON
"$EMBER" bench --model $TINY -w short -n 8 -b 1,4 --runs 1 --seconds 0 --warmup 0 --json "$tmp/bench.json" > "$tmp/bench.txt" 2>&1
if python3 - "$tmp/bench.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
assert [e["batch"] for e in r["encode"]] == [1, 4], r["encode"]
assert all(e["texts_per_s"] > 0 and e["latency_ms"]["p50"] > 0 for e in r["encode"])
assert r["tokenize"]["tokens_per_s"] > 0 and r["memory"]["peak_rss_mb"] > 0
PY
then ok "ember bench JSON"; else fail "ember bench JSON: $(head -5 "$tmp/bench.txt")"; fi
expect "bench with an unknown workload" 2 "workload" -- "$EMBER" bench --model $TINY -w nonsense

# the seed demo, against sentence-transformers' scores (tests/data/minilm/reference.json)
if [ ! -f "$MINILM/model.safetensors" ]; then
  if [ "${EMBER_REQUIRE_WEIGHTS:-0}" = 1 ]; then fail "$MINILM is missing (EMBER_REQUIRE_WEIGHTS=1)"; else
    echo "skip - seed demo: $MINILM is missing (run weights/fetch.sh)"; fi
else
  python3 -c 'import json; print("\n".join(json.load(open("tests/data/minilm/reference.json"))["seed_corpus"]))' > "$tmp/corpus.txt"
  "$EMBER" search --model $MINILM --corpus "$tmp/corpus.txt" -k 4 --json \
    -q "his face was red with anger" -q "time to face the consequences of your actions." > "$tmp/search.jsonl" 2>&1
  python3 - "$tmp/search.jsonl" <<'PY' && ok "seed demo: same best matches and scores as sentence-transformers (1e-4)" || fail "seed demo differs"
import json, sys
ref = json.load(open("tests/data/minilm/reference.json"))
got = [json.loads(l) for l in open(sys.argv[1])]
assert len(got) == 2, got
for q, res in enumerate(got):
    want = ref["seed_scores"][q]
    best = max(range(len(want)), key=lambda i: want[i])
    assert res["results"][0]["index"] == best, (q, res["results"][0], best)
    for r in res["results"]:
        assert abs(r["score"] - want[r["index"]]) <= 1e-4, (q, r, want[r["index"]])
    print("query %d: best '%s' %.4f" % (q, res["results"][0]["text"], res["results"][0]["score"]))
PY
fi

echo "$fails failure(s)"
[ "$fails" = 0 ]
