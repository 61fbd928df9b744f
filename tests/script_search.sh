#!/usr/bin/env bash
# ember search over stored vectors, as a user runs it: the seed demo's
# answers from shards ember embed wrote (the same as embedding the corpus on
# the spot), compact vectors with rescoring, and the clear refusals: vectors
# of another model, queries of another dimension, shards that cannot be
# searched. $1: the ember binary.
set -u
EMBER=$(realpath "$1")
cd "$(dirname "$0")/.."
MODEL=weights/all-MiniLM-L6-v2 TINY=tests/data/tiny-bert
fail() { echo "FAIL: $*" >&2; exit 1; }
if [ ! -f "$MODEL/model.safetensors" ]; then
    if [ "${EMBER_REQUIRE_WEIGHTS:-0}" = 1 ]; then fail "$MODEL is missing"; fi
    echo "skip: $MODEL is missing (weights/fetch.sh)"; exit 77
fi
T=$(mktemp -d /tmp/ember-test-search-XXXXXX)
trap 'rm -rf "$T"' EXIT
printf '%s\n' "did you see the look on her face" "the new clock face on my watch is amazing" \
    "it is time to face my demons" "how many new faces did you see in the office today" > "$T/docs.txt"
Q=(-q "his face was red with anger" -q "time to face the consequences of your actions.")

"$EMBER" search -m "$MODEL" --corpus "$T/docs.txt" "${Q[@]}" -k 4 --json > "$T/direct.jsonl" || fail "search --corpus"
"$EMBER" embed -m "$MODEL" "$T/docs.txt" -o "$T/float" --shard-rows 3 -q || fail "embed shards"
"$EMBER" search -m "$MODEL" --vectors "$T/float" --corpus "$T/docs.txt" "${Q[@]}" -k 4 --json > "$T/stored.jsonl" ||
    fail "search --vectors"
python3 - "$T/direct.jsonl" "$T/stored.jsonl" <<'PY' || fail "stored vectors answer otherwise: $(cat "$T/stored.jsonl")"
import json, sys
a, b = ([json.loads(l) for l in open(p)] for p in sys.argv[1:])
assert len(a) == len(b) == 2
for x, y in zip(a, b):
    assert [r["index"] for r in x["results"]] == [r["index"] for r in y["results"]], (x, y)
    assert all(abs(r["score"] - s["score"]) < 1e-4 for r, s in zip(x["results"], y["results"]))
    assert all(r["text"] == s["text"] for r, s in zip(x["results"], y["results"]))
PY
echo "ok - the seed demo from stored shards, as from the corpus embedded on the spot"

for p in int8 binary ubinary uint8; do
    "$EMBER" embed -m "$MODEL" "$T/docs.txt" -o "$T/$p" --shard-rows 3 --precision $p -q || fail "embed --precision $p"
    "$EMBER" search -m "$MODEL" --vectors "$T/$p" --corpus "$T/docs.txt" "${Q[@]}" -k 1 > "$T/$p.out" || fail "search $p"
    grep -q "did you see the look on her face" "$T/$p.out" && grep -q "it is time to face my demons" "$T/$p.out" ||
        fail "$p: other best matches: $(cat "$T/$p.out")"
done
echo "ok - int8, uint8, binary, ubinary shards: the same best matches after rescoring"

"$EMBER" search -m "$TINY" --vectors "$T/float" -q x 2> "$T/err" && fail "vectors of another model searched"
grep -q "all-MiniLM-L6-v2.*tiny-bert" "$T/err" || fail "model mismatch not named: $(cat "$T/err")"
"$EMBER" embed -m "$TINY" "$T/docs.txt" -o "$T/tiny.npy" -q || fail "tiny embed"
"$EMBER" search --vectors "$T/float" --query-vectors "$T/tiny.npy" 2> "$T/err" && fail "64-dim queries accepted"
grep -q "rows of 384 dimensions" "$T/err" || fail "dimension mismatch not named: $(cat "$T/err")"
"$EMBER" embed -m "$MODEL" "$T/docs.txt" -o "$T/j" --shard-rows 3 --format jsonl -q || fail "jsonl shards"
"$EMBER" search -m "$MODEL" --vectors "$T/j" -q x 2> "$T/err" && fail "JSONL shards searched"
grep -q "JSONL shards cannot be searched" "$T/err" || fail "JSONL shards: $(cat "$T/err")"
echo "ok - another model, another dimension, JSONL shards: refused with the reason"
