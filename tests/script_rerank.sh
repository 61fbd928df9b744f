#!/usr/bin/env bash
# ember rerank as a user runs it, on the tiny random cross-encoder
# (tools/make_tiny_cross_encoder.py): the lines best first with
# CrossEncoder's scores (the committed references), --raw-scores, -k, --json,
# and the refusals: an encoder, a classifier of three labels, no query.
# $1: the ember binary.
set -u
EMBER=$(realpath "$1")
cd "$(dirname "$0")/.."
CE=tests/data/tiny-cross-encoder REF=tests/data/tiny-cross-encoder-ref
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v python3 >/dev/null || { echo "skip: python3 is missing"; exit 77; }
T=$(mktemp -d /tmp/ember-test-rerank-XXXXXX)
trap 'rm -rf "$T"' EXIT
# the first query of pairs.json with the texts paired with it there, and the others' texts
python3 -c 'import json,sys; p=json.load(open(sys.argv[1])); print("\n".join(x[1] for x in p[:6]))' \
    "$REF/pairs.json" > "$T/docs.txt"
Q="what is the capital of france"
"$EMBER" rerank -m "$CE" -q "$Q" "$T/docs.txt" --json > "$T/all.json" || fail "rerank --json"
"$EMBER" rerank -m "$CE" -q "$Q" "$T/docs.txt" --json --raw-scores -k 2 > "$T/raw.json" || fail "rerank --raw-scores"
"$EMBER" rerank -m "$CE" -q "$Q" - < "$T/docs.txt" > "$T/text.txt" || fail "rerank from stdin"
python3 - "$T" "$REF" <<'PY' || fail "rerank's answers: $(cat "$T/all.json" "$T/raw.json")"
import json, math, struct, sys
t, ref = sys.argv[1:]
def npy(path):  # float32 (n, 1)
    b = open(path, "rb").read()
    hl = struct.unpack("<H", b[8:10])[0]
    return list(struct.unpack(f"<{(len(b) - 10 - hl) // 4}f", b[10 + hl:]))
logits, scores = npy(f"{ref}/logits1.npy"), npy(f"{ref}/scores1.npy")
a = json.load(open(f"{t}/all.json"))
res = a["results"]
assert a["query"] == "what is the capital of france" and len(res) == 6, a
assert [r["score"] for r in res] == sorted((r["score"] for r in res), reverse=True), res
lines = open(f"{t}/docs.txt").read().splitlines()
for r in res:
    assert lines[r["index"]] == r["text"], r
    # line 0 is pair 0 of the references; the others were paired with other queries there
    if r["index"] == 0:
        assert abs(r["score"] - scores[0]) < 1e-5, (r, scores[0])
    assert 0 < r["score"] < 1
raw = json.load(open(f"{t}/raw.json"))["results"]
assert len(raw) == 2 and [r["index"] for r in raw] == [r["index"] for r in res[:2]], raw
for r in raw:
    s = 1 / (1 + math.exp(-r["score"]))
    assert abs(s - next(x["score"] for x in res if x["index"] == r["index"])) < 1e-6, r
    if r["index"] == 0:
        assert abs(r["score"] - logits[0]) < 2e-5, (r, logits[0])
text = open(f"{t}/text.txt").read().splitlines()
assert text[0] == "query: what is the capital of france" and len(text) == 7, text
assert text[1].split(None, 1)[1] == res[0]["text"], text
print(f"rerank: {len(res)} lines, best {res[0]['score']:.4f} {res[0]['text']!r}")
PY
"$EMBER" rerank -m tests/data/tiny-bert -q "$Q" "$T/docs.txt" 2> "$T/err" && fail "an encoder reranks"
grep -q "not a cross-encoder" "$T/err" || fail "encoder: $(cat "$T/err")"
"$EMBER" rerank -m tests/data/tiny-cross-encoder-3 -q "$Q" "$T/docs.txt" 2> "$T/err" && fail "3 labels rerank"
grep -q "3 labels" "$T/err" || fail "3 labels: $(cat "$T/err")"
"$EMBER" rerank -m "$CE" "$T/docs.txt" 2> "$T/err"; [ $? = 2 ] || fail "no query: not a usage error"
"$EMBER" rerank --help | grep -q -- "--raw-scores" || fail "--help"
echo "ok"
