#!/usr/bin/env bash
# Faults around a resumable `ember embed` run of shards (issue 13, item 3):
#   - the output's disk fills up (a small tmpfs), the output directory turns
#     read-only or is removed mid-run, the input is truncated while it is read:
#     each a non-zero exit and an error naming the file, then `--resume`, once
#     the fault is gone, ends with the bytes of an uninterrupted run;
#   - a shard or manifest.json corrupted, truncated or edited by hand before
#     `--resume`: either redone (the same bytes as an uninterrupted run) or a
#     clear error naming the file that leaves the directory as it was — never
#     a result with foreign rows mixed in;
#   - SIGKILL at EMBER_FAULT_KILLS (default 24) random points, the delays drawn
#     from EMBER_FAULT_SEED (printed; default 13), each run resumed to the end
#     and compared byte for byte with the uninterrupted run.
# The tmpfs and read-only cases need root (mount, setpriv); they say "skip:"
# and the rest runs where that is not possible.
# $1: the ember binary. Uses the tiny BERT (tests/data/tiny-bert or $EMBER_TINY_MODEL).
set -u
EMBER=${1:?usage: script_embed_faults.sh path/to/ember}
MODEL=${EMBER_TINY_MODEL:-tests/data/tiny-bert}
if [ ! -f "$MODEL/config.json" ]; then
    if [ "${EMBER_REQUIRE_WEIGHTS:-0}" = 1 ]; then echo "FAIL: $MODEL is missing" >&2; exit 1; fi
    echo "skip: $MODEL is missing (tools/make_tiny_bert.py, or set EMBER_TINY_MODEL)"
    exit 77
fi
command -v jq > /dev/null || { echo "skip: jq is missing (the manifest edits use it)"; exit 77; }
SEED=${EMBER_FAULT_SEED:-13}
KILLS=${EMBER_FAULT_KILLS:-24}
T=$(mktemp -d /tmp/ember-test-faults-XXXXXX)
MOUNTS=()
cleanup() {
    for m in "${MOUNTS[@]}"; do umount "$m" 2> /dev/null; done
    rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
# The same options everywhere: the same windows, hence the same bits.
OPTS=(--shard-rows 30 --window 30 --threads 1) # one thread: tiny matrices, a busy machine
embed() { "$EMBER" embed -m "$MODEL" "$T/corpus.txt" "${OPTS[@]}" "$@"; }
# In the background, $! must be ember's own pid (a function would be a subshell's).
RUN=("$EMBER" embed -m "$MODEL" "$T/corpus.txt" "${OPTS[@]}")
echo "seed $SEED (EMBER_FAULT_SEED), $KILLS kills (EMBER_FAULT_KILLS)"

awk -v seed="$SEED" 'BEGIN { srand(seed); split("the quick brown fox jumps over lazy dog time flies like an arrow café naïve 日本語 123", w, " ");
  for (i = 0; i < 600; i++) { k = rand(); if (k < 0.02) { print ""; continue }
    n = int(rand() * 16) + 1; s = ""; for (j = 0; j < n; j++) s = s (j ? " " : "") w[int(rand() * 17) + 1]; print s } }' \
    > "$T/corpus.txt"
cp "$T/corpus.txt" "$T/corpus.orig"

start=$(date +%s%N)
embed -o "$T/ref" -q 2> "$T/ref.err" || fail "reference run: $(cat "$T/ref.err")"
REF_SECONDS=$(awk -v a="$start" -v b="$(date +%s%N)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')
echo "reference run: $REF_SECONDS s"
[ "$(ls "$T/ref" | grep -c '^shard-')" = 20 ] || fail "expected 20 shards: $(ls "$T/ref")"

# dir matches the reference: every shard, and the manifest but for the
# input's mtime (a restored input is a new file to stat)
same_as_ref() { # dir [reference dir]
    local ref=${2:-$T/ref}
    [ "$(ls "$1" | grep -c '^shard-')" = "$(ls "$ref" | grep -c '^shard-')" ] || return 1
    [ -z "$(ls "$1" | grep -v '^shard-[0-9]*\.npy$' | grep -v '^manifest\.json$')" ] || return 1
    for f in "$ref"/shard-*; do cmp -s "$f" "$1/$(basename "$f")" || return 1; done
    cmp -s <(grep -v '"mtime"' "$ref/manifest.json") <(grep -v '"mtime"' "$1/manifest.json")
}
# A stopped run left a consistent directory: what the manifest lists exists
# with its recorded size, and no other shard or partial file.
consistent() { # dir label
    local d=$1 f
    [ -f "$d/manifest.json" ] || return 0 # stopped before its first manifest
    jq -e . "$d/manifest.json" > /dev/null || fail "$2: manifest.json is not valid JSON"
    for f in $(jq -r '.shards[].file' "$d/manifest.json"); do
        [ -f "$d/$f" ] || fail "$2: the manifest lists $f, which is missing"
        [ "$(stat -c %s "$d/$f")" = "$(jq -r ".shards[] | select(.file == \"$f\") | .bytes" "$d/manifest.json")" ] ||
            fail "$2: $f is not of its recorded size"
    done
}
# Resume until complete; the output must be the reference's.
resume_to_end() { # dir label
    embed -o "$1" --resume -q 2> "$T/resume.err" || fail "$2: --resume failed: $(cat "$T/resume.err")"
    same_as_ref "$1" || fail "$2: the resumed output differs from the uninterrupted run: $(ls "$1")"
}
# Wait until the manifest of dir lists shard n (the run of pid still going).
wait_shard() { # dir n pid
    for _ in $(seq 1 3000); do
        grep -q "shard-0000$2" "$1/manifest.json" 2> /dev/null && return 0
        kill -0 "$3" 2> /dev/null || return 1
        sleep 0.01
    done
    return 1
}

# ---- the disk fills up ------------------------------------------------------------------
# room for about half the output (tmpfs counts 4 KiB pages)
half_kib=$(($(du -s --block-size=4096 "$T/ref" | cut -f1) / 2 * 4))
if mkdir "$T/full" && mount -t tmpfs -o size=${half_kib}k tmpfs "$T/full" 2> /dev/null; then
    MOUNTS+=("$T/full")
    embed -o "$T/full/out" -q 2> "$T/full.err" && fail "disk full: the run succeeded"
    grep -q "$T/full/out/.*No space left on device" "$T/full.err" ||
        fail "disk full: no error naming the file: $(cat "$T/full.err")"
    consistent "$T/full/out" "disk full"
    mount -o remount,size=8m "$T/full" || fail "cannot grow the tmpfs"
    resume_to_end "$T/full/out" "disk full"
else
    echo "skip: disk full (cannot mount a tmpfs: not root?)"
fi

# ---- the output directory turns read-only mid-run (as a user: root writes anyway) ----------
if setpriv --reuid=65534 --regid=65534 --clear-groups true 2> /dev/null; then
    chmod 755 "$T"
    mkdir "$T/ro" && chown 65534:65534 "$T/ro"
    as_user() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
    setpriv --reuid=65534 --regid=65534 --clear-groups "${RUN[@]}" -o "$T/ro/out" -q 2> "$T/ro.err" &
    pid=$!
    wait_shard "$T/ro/out" 2 $pid || fail "read-only: the run ended before shard 2: $(cat "$T/ro.err")"
    chmod a-w "$T/ro/out"
    wait $pid && fail "read-only: the run succeeded"
    grep -q "$T/ro/out/.*Permission denied" "$T/ro.err" || fail "read-only: no error naming the file: $(cat "$T/ro.err")"
    chmod u+w "$T/ro/out"
    consistent "$T/ro/out" "read-only"
    as_user "$EMBER" embed -m "$MODEL" "$T/corpus.txt" "${OPTS[@]}" -o "$T/ro/out" --resume -q 2> "$T/ro2.err" ||
        fail "read-only: --resume failed: $(cat "$T/ro2.err")"
    same_as_ref "$T/ro/out" || fail "read-only: the resumed output differs from the uninterrupted run"
else
    echo "skip: read-only output directory (cannot run as another user)"
fi

# ---- the output directory is removed mid-run ---------------------------------------------
"${RUN[@]}" -o "$T/gone" -q 2> "$T/gone.err" &
pid=$!
wait_shard "$T/gone" 2 $pid || fail "removed: the run ended before shard 2"
for _ in $(seq 1 50); do rm -rf "$T/gone" 2> /dev/null && [ ! -e "$T/gone" ] && break; done
wait $pid && fail "removed: the run succeeded with its directory gone"
grep -q "$T/gone/.*No such file or directory" "$T/gone.err" || fail "removed: no error naming the file: $(cat "$T/gone.err")"
rm -rf "$T/gone" # anything it made again on its way out
embed -o "$T/gone" --resume 2> "$T/gone2.err" || fail "removed: --resume failed: $(cat "$T/gone2.err")"
grep -q 'nothing to resume' "$T/gone2.err" || fail "removed: --resume did not say it starts again: $(cat "$T/gone2.err")"
same_as_ref "$T/gone" || fail "removed: the output differs from the uninterrupted run"

# ---- the input is truncated while it is read ---------------------------------------------
# The reader takes 64 KiB at a time and runs at most a few windows ahead:
# lines of ~1 KB (each cut to 16 tokens) keep it far from the cut when it comes.
awk -v seed="$SEED" 'BEGIN { srand(seed + 2); for (i = 0; i < 1000; i++) { s = "";
    while (length(s) < 1000) s = s " w" int(rand() * 1000); print s } }' > "$T/long.txt"
cp "$T/long.txt" "$T/long.orig"
LONG=("$EMBER" embed -m "$MODEL" "$T/long.txt" "${OPTS[@]}" --max-length 16 -q)
"${LONG[@]}" -o "$T/long-ref" 2> "$T/long.err" || fail "long lines: $(cat "$T/long.err")"
"${LONG[@]}" -o "$T/cut" 2> "$T/cut.err" &
pid=$!
wait_shard "$T/cut" 1 $pid || fail "truncated input: the run ended before shard 1"
truncate -s $(($(stat -c %s "$T/long.txt") * 6 / 10 + 7)) "$T/long.txt" # mid-line, ~row 600
wait $pid && fail "truncated input: the run succeeded (and would pass for complete)"
grep -q "long.txt: read error at line [0-9]*: the file ends after" "$T/cut.err" ||
    fail "truncated input: no error naming the file: $(cat "$T/cut.err")"
grep -q '"complete": false' "$T/cut/manifest.json" || fail "truncated input: the manifest says complete"
consistent "$T/cut" "truncated input"
cp "$T/long.orig" "$T/long.txt" # the fault gone: the whole file back
"${LONG[@]}" -o "$T/cut" --resume 2> "$T/cut2.err" || fail "truncated input: --resume: $(cat "$T/cut2.err")"
same_as_ref "$T/cut" "$T/long-ref" || fail "truncated input: the resumed output differs from the uninterrupted run"

# ---- shards and the manifest damaged before --resume --------------------------------------
# A run cut short (SIGTERM after shard 6) and the complete reference, as bases.
"${RUN[@]}" -o "$T/part" -q 2> /dev/null &
pid=$!
wait_shard "$T/part" 6 $pid || fail "the partial base ended before shard 6"
kill -TERM $pid
wait $pid
[ "$(jq -r .complete "$T/part/manifest.json")" = false ] || fail "the partial base is complete: $(jq -c "[.complete, (.shards | length)]" "$T/part/manifest.json")"
[ "$(jq '.shards | length' "$T/part/manifest.json")" -ge 4 ] || fail "the partial base is too short"

n=0
# case base expect what-to-do: expect "redo" (exit 0, the reference's bytes, and
# the stderr pattern) or "error" (non-zero, the pattern, and the directory untouched)
damage() { # base expect pattern command...
    local base=$1 expect=$2 pat=$3
    shift 3
    n=$((n + 1))
    local d="$T/dmg$n" label="damage $n ($base: $*)"
    cp -a "$T/$base" "$d"
    (cd "$d" && eval "$@") || fail "$label: could not apply"
    local before
    before=$(snapshot "$d")
    embed -o "$d" --resume 2> "$T/dmg.err"
    local st=$?
    grep -q -- "$pat" "$T/dmg.err" || fail "$label: stderr lacks '$pat': $(cat "$T/dmg.err")"
    if [ "$expect" = redo ]; then
        [ $st = 0 ] || fail "$label: exit $st: $(cat "$T/dmg.err")"
        same_as_ref "$d" || fail "$label: the redone output differs from the uninterrupted run"
    else
        [ $st != 0 ] || fail "$label: accepted"
        [ "$before" = "$(snapshot "$d")" ] ||
            fail "$label: the refused directory was changed"
    fi
    rm -rf "$d"
}
snapshot() { # dir: its names and contents (the manifest's as JSON: a resume that
    # stops at the input's check has rewritten it, in its own layout)
    (cd "$1" && for f in *; do
        echo "$f"
        if [ "$f" = manifest.json ] && jq -e . "$f" > /dev/null 2>&1; then jq -S -c . "$f"; else cksum < "$f"; fi
    done)
}
edit() { # jq filter: applied to manifest.json in place
    jq "$1" manifest.json > m.tmp && mv m.tmp manifest.json
}
# Every case on the run cut short; on the complete run, those where being
# complete changes the path (the rest cost a long resume and test nothing new).
damage ref redo 'shard-00002.npy is damaged' 'printf X | dd of=shard-00002.npy bs=1 seek=3000 conv=notrunc 2> /dev/null'
damage ref redo 'shard-00019.npy is missing' 'rm shard-00019.npy'
damage ref redo '' 'cp shard-00001.npy shard-00042.npy; echo x > shard-00043.npy.partial; echo "{" > manifest.json.partial'
damage ref error 'manifest.json: cannot read the manifest' 'head -c 1000 manifest.json > m.tmp && mv m.tmp manifest.json'
damage ref error 'the output directory is not empty' 'rm manifest.json'
damage ref redo 'shard-00018.npy is damaged' 'edit ".shards[18].crc32 += 1"'
damage ref error 'is inconsistent: its totals.rows' 'edit ".shards[-1].totals.rows += 5"'
for base in part; do
    # shards: found by size or crc32 and made again (with those after them)
    damage $base redo 'shard-00002.npy is damaged' 'printf X | dd of=shard-00002.npy bs=1 seek=3000 conv=notrunc 2> /dev/null'
    damage $base redo 'shard-00002.npy is of the wrong size' 'truncate -s 6000 shard-00002.npy'
    damage $base redo 'shard-00002.npy is of the wrong size' 'printf "\0\0\0\0" >> shard-00002.npy'
    damage $base redo 'shard-00002.npy is missing' 'rm shard-00002.npy'
    damage $base redo 'shard-00001.npy is damaged' 'cp shard-00003.npy shard-00001.npy'
    damage $base redo 'shard-00000.npy is of the wrong size' ': > shard-00000.npy'
    # debris a killed run leaves: removed
    damage $base redo '' 'cp shard-00001.npy shard-00042.npy; echo x > shard-00043.npy.partial; echo "{" > manifest.json.partial'
    # manifest.json cut short, emptied, replaced, removed: an error naming it
    damage $base error 'manifest.json: cannot read the manifest' 'head -c 1000 manifest.json > m.tmp && mv m.tmp manifest.json'
    damage $base error 'manifest.json: cannot read the manifest' ': > manifest.json'
    damage $base error 'manifest.json: not an ember embed manifest' 'echo "[1, 2, 3]" > manifest.json'
    damage $base error 'the output directory is not empty' 'rm manifest.json'
    # manifest.json edited by hand: a recorded crc32 or size that its shard
    # does not have is the shard's damage, and it is made again ...
    damage $base redo 'shard-00001.npy is damaged' 'edit ".shards[1].crc32 += 1"'
    damage $base redo 'shard-00001.npy is of the wrong size' 'edit ".shards[1].bytes -= 4"'
    # ... the last entry dropped: that shard is made again
    # ... entries that disagree with each other or with their shard: an error
    damage $base error 'shard entry 1 (shard-00001.npy) is inconsistent' 'edit ".shards[1].rows -= 1"'
    damage $base error 'is inconsistent: its totals.rows' 'edit ".shards[-1].totals.rows += 5"'
    damage $base error 'shard entry 1 is malformed' 'edit ".shards[1].file = \"shard-00009.npy\""'
    damage $base error 'shard entry 2 is malformed' 'edit ".shards |= [.[0], .[1], .[3]]"'
    damage $base error 'shard entry 0 is malformed' 'edit ".shards[0].crc32 = \"x\""'
    damage $base error 'does not fit output.shard_rows' 'edit ".output.shard_rows /= 2"'
done
# the last entry dropped: made again on a run cut short; a complete run that
# lost an entry is refused (its totals say more rows)
damage part redo '' 'edit "del(.shards[-1])"'
damage ref error 'says complete, but its totals are missing or disagree' 'edit "del(.shards[-1])"'
# where the run stopped in the input, edited: the input no longer matches
damage part error 'is not the input of the run being resumed' 'edit ".shards[-1].input_crc32 += 1"'
damage part error 'is not the input of the run being resumed' 'edit ".shards[-1].input_bytes += 1"'
# the last shard's rows and totals lowered together: the shard holds more rows
# than its entry says (its .npy header): made again
damage part redo 'its row count differs' 'edit ".shards[-1].rows -= 1 | .shards[-1].totals.rows -= 1"'
# "complete" set by hand on a run cut short: not believed
damage part error 'says complete, but its totals are missing' 'edit ".complete = true"'
# ... and taken back on a complete one: every row is checked, nothing is added
damage ref redo 'resumed after' 'edit ".complete = false | del(.totals)"'
echo "damage: $n cases ($SECONDS s so far)"

# ---- SIGKILL at random points, each run resumed --------------------------------------------
# Delays drawn from the seed, up to the reference run's time; a kill that
# comes after the run ended is drawn again (at most 3 times the number asked).
delays=$(awk -v seed="$SEED" -v n=$((3 * KILLS)) -v t="$REF_SECONDS" 'BEGIN { srand(seed + 1);
  for (i = 0; i < n; i++) printf "%.3f\n", 0.05 + rand() * t }')
kills=0 tries=0 with_shards=0
d="$T/kill"
for delay in $delays; do
    [ $kills -ge "$KILLS" ] && break
    tries=$((tries + 1))
    rm -rf "$d"
    "${RUN[@]}" -o "$d" -q 2> /dev/null &
    pid=$!
    sleep "$delay"
    kill -KILL $pid 2> /dev/null
    wait $pid 2> /dev/null
    st=$?
    [ $st = 0 ] && continue # it ended first
    [ $st = 137 ] || fail "kill $kills (after ${delay}s): exit status $st"
    kills=$((kills + 1))
    consistent "$d" "kill $kills (after ${delay}s)"
    [ -f "$d/manifest.json" ] && [ "$(jq '.shards | length' "$d/manifest.json")" -gt 0 ] && with_shards=$((with_shards + 1))
    # every other time, kill the resumed run too, at half the delay
    if [ $((kills % 2)) = 0 ] && [ -f "$d/manifest.json" ]; then
        "${RUN[@]}" -o "$d" --resume -q 2> /dev/null &
        pid=$!
        sleep "$(awk -v d="$delay" 'BEGIN { printf "%.3f", d / 2 }')"
        kill -KILL $pid 2> /dev/null
        wait $pid 2> /dev/null
        consistent "$d" "kill $kills, its resume killed"
    fi
    resume_to_end "$d" "kill $kills (after ${delay}s, seed $SEED)"
done
[ $kills -ge "$KILLS" ] || fail "only $kills of $KILLS kills landed mid-run in $tries tries"
echo "killed $kills runs in $tries tries, $with_shards of them with shards committed ($SECONDS s so far)"
echo "killed $kills runs at random points (seed $SEED), each resumed to the uninterrupted run's bytes"
echo "ok"
