#!/usr/bin/env bash
# `ember embed` as a user meets it: Ctrl-C / SIGTERM leave consistent output
# and print a resume command that works; a blocked stdin does not hold up
# Ctrl-C; bad input is named by file and line; a resume with other options or
# another input is refused; progress only when asked or on a terminal; the
# output formats and the JSONL input agree with the plain ones.
# $1: the ember binary. Uses the tiny BERT (tests/data/tiny-bert or $EMBER_TINY_MODEL).
set -u
EMBER=${1:?usage: script_embed_stream.sh path/to/ember}
MODEL=${EMBER_TINY_MODEL:-tests/data/tiny-bert}
if [ ! -f "$MODEL/config.json" ]; then
    if [ "${EMBER_REQUIRE_WEIGHTS:-0}" = 1 ]; then echo "FAIL: $MODEL is missing" >&2; exit 1; fi
    echo "skip: $MODEL is missing (tools/make_tiny_bert.py, or set EMBER_TINY_MODEL)"
    exit 77
fi
T=$(mktemp -d /tmp/ember-test-embed-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
embed() { "$EMBER" embed -m "$MODEL" "$@"; }

# 40k lines: words, empty lines, invalid UTF-8, over-long lines.
awk 'BEGIN { srand(7); split("the quick brown fox jumps over lazy dog time flies like an arrow café naïve 日本語 123", w, " ");
  for (i = 0; i < 40000; i++) {
    k = rand();
    if (k < 0.02) { print ""; continue }
    if (k < 0.03) { printf "bad \377\376 bytes %s\n", w[int(rand() * 17) + 1]; continue }
    n = (k < 0.035) ? 700 : int(rand() * 12) + 1; s = "";
    for (j = 0; j < n; j++) s = s (j ? " " : "") w[int(rand() * 17) + 1];
    print s } }' > "$T/corpus.txt"
[ "$(wc -l < "$T/corpus.txt")" = 40000 ] || fail "corpus generation"

# ---- the reference run and its summary ----------------------------------------------
embed "$T/corpus.txt" -o "$T/ref" --shard-rows 4000 2> "$T/ref.err" || fail "reference run: $(cat "$T/ref.err")"
grep -q '^ember embed: 40000 rows (' "$T/ref.err" || fail "summary line missing: $(cat "$T/ref.err")"
grep -q 'empty lines embedded as empty texts' "$T/ref.err" || fail "empty lines not counted"
grep -q 'texts truncated to' "$T/ref.err" || fail "truncated texts not counted"
grep -q 'had invalid UTF-8, replaced by U+FFFD' "$T/ref.err" || fail "invalid UTF-8 not counted"
grep -q 'tokens/s' "$T/ref.err" || fail "no tokens/s in the summary"
grep -q 'device busy cpu' "$T/ref.err" || fail "no device busy time in the summary"
grep -q 'ETA' "$T/ref.err" && fail "progress printed although stderr is not a terminal"
[ "$(ls "$T/ref" | grep -c '^shard-.*\.npy$')" = 10 ] || fail "expected 10 shards: $(ls "$T/ref")"
grep -q '"complete": true' "$T/ref/manifest.json" || fail "manifest not complete"

# Another run of the same makes a byte-identical directory of shards.
same_shards() { # dir_a dir_b
    for f in "$1"/shard-*; do cmp -s "$f" "$2/$(basename "$f")" || return 1; done
    [ "$(ls "$1" | grep -c '^shard-')" = "$(ls "$2" | grep -c '^shard-')" ]
}

# ---- Ctrl-C mid-run: consistent shards, a resume command that finishes the job ----------
interrupt_and_resume() { # signal expected_status
    local sig=$1 want=$2 dir="$T/int-$1"
    # the reference's options: where the backend's bits depend on the batch,
    # only the same batching can give the same output
    "$EMBER" embed -m "$MODEL" "$T/corpus.txt" -o "$dir" --shard-rows 4000 2> "$T/int.err" &
    local pid=$!
    for _ in $(seq 1 6000); do
        grep -q 'shard-00001' "$dir/manifest.json" 2> /dev/null && break
        kill -0 $pid 2> /dev/null || fail "$sig: the run ended before it could be interrupted"
        sleep 0.01
    done
    kill -"$sig" $pid
    wait $pid
    local st=$?
    [ $st = "$want" ] || fail "$sig: exit status $st, expected $want: $(cat "$T/int.err")"
    grep -q "interrupted" "$T/int.err" || fail "$sig: no interruption message: $(cat "$T/int.err")"
    grep -q -- "--resume" "$T/int.err" || fail "$sig: no resume command printed: $(cat "$T/int.err")"
    ls "$dir" | grep -q partial && fail "$sig: partial files left: $(ls "$dir")"
    grep -q '"complete": false' "$dir/manifest.json" || fail "$sig: manifest says complete"
    for f in $(grep -o 'shard-[0-9]*\.npy' "$dir/manifest.json"); do
        [ -f "$dir/$f" ] || fail "$sig: the manifest lists $f, which is missing"
    done
    [ "$(ls "$dir" | grep -c '^shard-')" = "$(grep -c '"file"' "$dir/manifest.json")" ] ||
        fail "$sig: shard files not listed in the manifest: $(ls "$dir")"
    # Run the printed command (with this build's binary for "ember").
    local resume_cmd
    resume_cmd=$(grep -A1 'resume with:' "$T/int.err" | tail -1 | sed "s|^  ember |\"\$EMBER\" |")
    eval "$resume_cmd" 2> "$T/resume.err" || fail "$sig: the printed resume command failed: $resume_cmd: $(cat "$T/resume.err")"
    grep -q 'resumed after' "$T/resume.err" || fail "$sig: resumed run does not say so: $(cat "$T/resume.err")"
    grep -q '^ember embed: 40000 rows' "$T/resume.err" || fail "$sig: resumed run's totals: $(cat "$T/resume.err")"
    same_shards "$T/ref" "$dir" || fail "$sig: resumed output differs from the uninterrupted run"
    cmp -s "$T/ref/manifest.json" "$dir/manifest.json" ||
        fail "$sig: resumed manifest differs: $(diff "$T/ref/manifest.json" "$dir/manifest.json")"
}
interrupt_and_resume INT 130
interrupt_and_resume TERM 143

# Ctrl-C while the writer is the slow stage (a slow disk: fsync made to take
# 0.4 s): each time it looks, the next window is ready, so it is the reader
# that sees the stop; the run must still end interrupted, not complete.
if command -v cc > /dev/null; then
    cat > "$T/slow_fsync.c" << 'EOF'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <time.h>
int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    struct timespec ts = {0, 400 * 1000 * 1000};
    while (nanosleep(&ts, &ts) != 0) {
    }
    return real(fd);
}
EOF
    cc -shared -fPIC -o "$T/slow_fsync.so" "$T/slow_fsync.c" -ldl || fail "cannot build the fsync shim"
    LD_PRELOAD="$T/slow_fsync.so" ASAN_OPTIONS=verify_asan_link_order=0 "$EMBER" embed -m "$MODEL" "$T/corpus.txt" \
        -o "$T/slow" --shard-rows 1000 --window 1000 2> "$T/slow.err" &
    pid=$!
    for _ in $(seq 1 6000); do grep -q 'shard-00001' "$T/slow/manifest.json" 2> /dev/null && break; sleep 0.01; done
    kill -INT $pid
    wait $pid
    st=$?
    [ $st = 130 ] || fail "Ctrl-C with a slow writer: exit status $st: $(cat "$T/slow.err")"
    grep -q '"complete": false' "$T/slow/manifest.json" ||
        fail "Ctrl-C with a slow writer: the manifest says complete: $(grep -c '"file"' "$T/slow/manifest.json") shards"
fi

# A damaged shard of a complete run is found by its crc32 and made again.
cp -r "$T/ref" "$T/dmg"
printf 'X' | dd of="$T/dmg/shard-00003.npy" bs=1 seek=1000 conv=notrunc 2> /dev/null
embed "$T/corpus.txt" -o "$T/dmg" --shard-rows 4000 --resume 2> "$T/dmg.err" || fail "resume of a damaged run: $(cat "$T/dmg.err")"
grep -q 'shard-00003.npy is damaged' "$T/dmg.err" || fail "damaged shard not reported: $(cat "$T/dmg.err")"
same_shards "$T/ref" "$T/dmg" && cmp -s "$T/ref/manifest.json" "$T/dmg/manifest.json" ||
    fail "output after redoing a damaged shard differs"
# Killed while writing its first manifest: only manifest.json.partial is left.
mkdir "$T/first" && echo '{' > "$T/first/manifest.json.partial"
head -n 3000 "$T/corpus.txt" > "$T/first.txt"
embed "$T/first.txt" -o "$T/first" --shard-rows 1000 --resume -q 2> /dev/null || fail "resume after a first manifest cut short"
[ -f "$T/first/shard-00002.npy" ] || fail "first manifest cut short: $(ls "$T/first")"

# A resume of a complete run does nothing and says so.
embed "$T/corpus.txt" -o "$T/ref" --shard-rows 4000 --resume 2> "$T/again.err" || fail "resume of a complete run"
grep -q 'complete already' "$T/again.err" || fail "resume of a complete run: $(cat "$T/again.err")"

# ---- one file: Ctrl-C leaves neither a half file nor a .partial -----------------------------
"$EMBER" embed -m "$MODEL" "$T/corpus.txt" -o "$T/one.npy" --threads 1 --window 500 2> "$T/one.err" &
pid=$!
for _ in $(seq 1 3000); do [ -s "$T/one.npy.partial" ] && break; sleep 0.01; done
kill -INT $pid
wait $pid
st=$?
[ $st = 130 ] || fail "single file: exit status $st: $(cat "$T/one.err")"
ls "$T" | grep -q '^one\.npy' && fail "single file: left $(ls "$T" | grep one)"
grep -q 'was not written' "$T/one.err" || fail "single file: message: $(cat "$T/one.err")"

# ---- Ctrl-C while the reader waits on stdin that never comes ------------------------------
mkfifo "$T/fifo"
exec 3<> "$T/fifo" # a writer that never writes: the reader blocks
start=$(date +%s)
"$EMBER" embed -m "$MODEL" - -o "$T/stdin.npy" < "$T/fifo" 2> "$T/stdin.err" &
pid=$!
# stdin.npy.partial appears once the model is loaded and the reader waits
for _ in $(seq 1 3000); do [ -e "$T/stdin.npy.partial" ] && break; sleep 0.01; done
sleep 0.5
kill -INT $pid
wait $pid
st=$?
[ $(($(date +%s) - start)) -lt 20 ] || fail "Ctrl-C waited for stdin"
exec 3>&-
[ $st = 130 ] || fail "blocked stdin: exit status $st: $(cat "$T/stdin.err")"
grep -q 'read error' "$T/stdin.err" && fail "blocked stdin: spurious read error: $(cat "$T/stdin.err")"

# ---- Ctrl-C while the writer is blocked on a full stdout pipe: the signal
# breaks the write off (EINTR); that is the interruption, not a write error ----------------
mkfifo "$T/outfifo"
(sleep 4; cat) < "$T/outfifo" > "$T/held.jsonl" &
drain=$!
"$EMBER" embed -m "$MODEL" "$T/corpus.txt" --window 1000 > "$T/outfifo" 2> "$T/held.err" &
pid=$!
sleep 2
kill -INT $pid
wait $pid
st=$?
wait $drain
[ $st = 130 ] || fail "Ctrl-C with stdout held up: exit status $st, $(wc -l < "$T/held.jsonl") of 40000 rows: $(cat "$T/held.err")"
grep -q 'interrupted (Ctrl-C) after' "$T/held.err" || fail "Ctrl-C with stdout held up: $(cat "$T/held.err")"

# ---- resume refuses what would not give the same output -------------------------------
embed "$T/corpus.txt" -o "$T/r" --shard-rows 4000 --pooling mean --resume 2> "$T/r.err" && true
embed "$T/corpus.txt" -o "$T/r" --shard-rows 4000 --resume 2> "$T/r2.err" && fail "resume with other pooling accepted"
grep -q 'pooling' "$T/r2.err" || fail "pooling mismatch not named: $(cat "$T/r2.err")"
embed "$T/corpus.txt" -o "$T/r" --shard-rows 5000 --pooling mean --resume 2> "$T/r3.err" && fail "other shard size accepted"
grep -q 'shard size' "$T/r3.err" || fail "shard size mismatch not named: $(cat "$T/r3.err")"
# The same size, one byte changed inside the first shard's lines: caught by the crc32.
mkdir "$T/chg" && cp "$T/corpus.txt" "$T/chg/corpus.txt"
"$EMBER" embed -m "$MODEL" "$T/chg/corpus.txt" -o "$T/chg/out" --shard-rows 4000 --threads 1 2> /dev/null &
pid=$!
for _ in $(seq 1 6000); do grep -q 'shard-00000' "$T/chg/out/manifest.json" 2> /dev/null && break; sleep 0.01; done
kill -INT $pid; wait $pid
sed -i '2s/^./Z/' "$T/chg/corpus.txt"
[ "$(stat -c %s "$T/chg/corpus.txt")" = "$(stat -c %s "$T/corpus.txt")" ] || fail "test set-up: size changed"
if grep -q '"complete": false' "$T/chg/out/manifest.json"; then
    embed "$T/chg/corpus.txt" -o "$T/chg/out" --shard-rows 4000 --resume 2> "$T/chg.err" && fail "changed input accepted"
    grep -q 'is not the input of the run being resumed' "$T/chg.err" || fail "changed input: $(cat "$T/chg.err")"
fi
embed "$T/corpus.txt" -o "$T/x" --resume 2> "$T/x.err"
[ $? = 2 ] || fail "--resume without --shard-rows must be a usage error"
embed "$T/corpus.txt" -o "$T/ref" --shard-rows 4000 2> "$T/x.err" && fail "overwrote a run without --resume"
grep -q 'add --resume' "$T/x.err" || fail "no hint to resume: $(cat "$T/x.err")"
mkdir "$T/full" && touch "$T/full/other"
embed "$T/corpus.txt" -o "$T/full" --shard-rows 4000 2> "$T/x.err" && fail "wrote into a non-empty directory"

# ---- bad input is named by file and line, and nothing is left behind -----------------------
printf '{"text": "a"}\n{"text": "b"}\n{"text": oops}\n{"text": "d"}\n' > "$T/bad.jsonl"
embed "$T/bad.jsonl" -o "$T/bad.npy" 2> "$T/bad.err" && fail "malformed JSON accepted"
grep -q 'bad.jsonl:3: malformed JSON' "$T/bad.err" || fail "malformed JSON line not named: $(cat "$T/bad.err")"
[ -e "$T/bad.npy" ] || [ -e "$T/bad.npy.partial" ] && fail "output left after an error"
printf '{"text": "a"}\n{"body": "b"}\n' > "$T/nofield.jsonl"
embed "$T/nofield.jsonl" -o "$T/nf.npy" 2> "$T/nf.err" && fail "missing field accepted"
grep -q "nofield.jsonl:2: the text field is missing" "$T/nf.err" || fail "missing field: $(cat "$T/nf.err")"
embed "$T/corpus.txt" -o "$T/nt.npy" --no-truncate 2> "$T/nt.err" && fail "--no-truncate accepted an over-long line"
first_long=$(awk 'length($0) > 2000 { print NR; exit }' "$T/corpus.txt")
grep -q "corpus.txt:$first_long: the text is" "$T/nt.err" || fail "--no-truncate: line $first_long not named: $(cat "$T/nt.err")"
head -c 400000 "$T/corpus.txt" | gzip -c | head -c 30000 > "$T/cut.gz"
embed "$T/cut.gz" -o "$T/cut.npy" 2> "$T/cut.err" && fail "a truncated .gz was accepted"
grep -q 'cut.gz: read error' "$T/cut.err" || fail "truncated .gz: $(cat "$T/cut.err")"
if "$EMBER" info -m "$MODEL" | grep -q '^cuda devices *\(0\|-1\)'; then
    embed "$T/corpus.txt" -o "$T/g.npy" --device cuda:all 2> "$T/g.err" && fail "cuda:all without a GPU"
    grep -q 'no CUDA device' "$T/g.err" || fail "cuda:all without a GPU: $(cat "$T/g.err")"
fi

# ---- formats and inputs agree -------------------------------------------------------------
head -n 3000 "$T/corpus.txt" | grep -av $'\xff' | grep -v '^$' | head -n 2000 > "$T/small.txt"
awk '{ gsub(/\\/, "\\\\"); gsub(/"/, "\\\""); printf "{\"id\": %d, \"body\": \"%s\"}\n", NR, $0 }' "$T/small.txt" > "$T/small.jsonl"
embed "$T/small.txt" -o "$T/small.npy" -q || fail "small.txt"
embed "$T/small.jsonl" --field body -o "$T/small-j.npy" -q || fail "small.jsonl"
cmp -s "$T/small.npy" "$T/small-j.npy" || fail "JSONL input (--field body) differs from the text input"
gzip -c "$T/small.txt" > "$T/small.txt.gz"
embed "$T/small.txt.gz" -o "$T/small-gz.npy" -q || fail "small.txt.gz"
cmp -s "$T/small.npy" "$T/small-gz.npy" || fail ".gz input differs from the plain input"
embed "$T/small.txt" -o "$T/small16.npy" --format npy16 -q || fail "npy16"
head -c 128 "$T/small16.npy" | grep -q "'<f2'" || fail "npy16 header"
dim=$(head -c 128 "$T/small.npy" | grep -ao "shape': (2000, [0-9]*" | sed 's/.*, //')
[ -n "$dim" ] || fail "npy header: $(head -c 128 "$T/small.npy")"
[ "$(stat -c %s "$T/small16.npy")" = $((128 + 2000 * dim * 2)) ] || fail "npy16 size"
embed "$T/small.txt" -q > "$T/small.out.jsonl" || fail "JSONL to stdout"
[ "$(wc -l < "$T/small.out.jsonl")" = 2000 ] || fail "JSONL rows"
embed "$T/small.txt" -q -o "$T/small-o.jsonl" || fail "JSONL to a file"
cmp -s "$T/small.out.jsonl" "$T/small-o.jsonl" || fail "JSONL file differs from stdout"
embed "$T/small.txt" -o "$T/sj" --shard-rows 700 --format jsonl -q || fail "JSONL shards"
# Shards cut their windows at every 700 rows, so the batches differ from the
# single file's: the same bits only where the kernels are batch-invariant.
if "$EMBER" info -m "$MODEL" | grep -q "same bits in any batch"; then
    cat "$T"/sj/shard-*.jsonl | cmp -s - "$T/small.out.jsonl" || fail "JSONL shards differ from one JSONL file"
else
    cat "$T"/sj/shard-*.jsonl > "$T/sj.jsonl"
    python3 - "$T/sj.jsonl" "$T/small.out.jsonl" <<'PY' || fail "JSONL shards differ from one JSONL file by more than rounding"
import json, sys
a, b = ([json.loads(line) for line in open(p)] for p in sys.argv[1:])
assert len(a) == len(b) == 2000, (len(a), len(b))
d = max(abs(x - y) for r, s in zip(a, b) for x, y in zip(r, s))
assert d <= 1e-5, d
PY
fi
: > "$T/empty.txt"
embed "$T/empty.txt" -o "$T/empty.npy" -q || fail "empty input"
head -c 128 "$T/empty.npy" | grep -q "shape': (0, $dim)" || fail "empty input: $(head -c 128 "$T/empty.npy")"

# ---- progress: asked for, and on a terminal ----------------------------------------------
embed "$T/small.txt" -o "$T/p.npy" --progress 2> "$T/p.err" || fail "--progress"
grep -q 'rows/s' "$T/p.err" && grep -q 'ETA' "$T/p.err" || fail "--progress printed nothing: $(cat "$T/p.err")"
if command -v script > /dev/null; then
    script -qec "\"$EMBER\" embed -m \"$MODEL\" \"$T/small.txt\" -o \"$T/tty.npy\"" /dev/null > "$T/tty.out" 2>&1 ||
        fail "on a terminal: $(cat "$T/tty.out")"
    grep -q 'ETA' "$T/tty.out" || fail "no progress on a terminal: $(cat "$T/tty.out")"
    script -qec "\"$EMBER\" embed -m \"$MODEL\" \"$T/small.txt\" -o \"$T/tty.npy\" --no-progress" /dev/null > "$T/tty.out" 2>&1
    grep -q 'ETA' "$T/tty.out" && fail "--no-progress still drew progress"
fi
echo "ok"
