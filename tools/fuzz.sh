#!/usr/bin/env bash
# Fuzz ember's parsers with libFuzzer, under AddressSanitizer and
# UndefinedBehaviorSanitizer (clang from Debian's packages).
#
#   tools/fuzz.sh [SECONDS] [TARGET...]     (default: 60 s each, every target)
#
# Targets (tests/fuzz/fuzz_*.c): tokenize (the tokenizer on any bytes),
# tokenizer_files (tokenizer.json / vocab.txt / tokenizer_config.json),
# model_files (config.json, the safetensors header and offsets, modules.json),
# request (every route of the server's request handling), lines (the gzip
# line reader and the JSONL field reader), manifest (what --resume and search
# read). Each starts from its committed seeds (tests/fuzz/corpus/TARGET) and
# keeps what it finds in ${EMBER_FUZZ_WORK:-~/.cache/ember/fuzz}/TARGET; a
# crash is saved there too (crash-*), and the script then fails. Prints the
# executions and the corpus size of each target. EMBER_FUZZ_RUNS=N stops each
# target after N executions instead (SECONDS still bounds it), as the long
# run of bench/RESULTS.md does; EMBER_FUZZ_NO_BUILD=1 runs what is built.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(tokenize tokenizer_files model_files request lines manifest)
build=${EMBER_FUZZ_BUILD:-build-fuzz}
work=${EMBER_FUZZ_WORK:-$HOME/.cache/ember/fuzz}
command -v clang > /dev/null || { echo "fuzz: clang is missing (tools/install-deps.sh)" >&2; exit 1; }
mkdir -p "$build"
if [ "${EMBER_FUZZ_NO_BUILD:-0}" != 1 ]; then
    CC=clang CXX=clang++ cmake -S . -B "$build" -DEMBER_FUZZ=ON -DEMBER_CUDA=OFF -DEMBER_BUILD_TESTS=OFF \
        -DCMAKE_BUILD_TYPE=RelWithDebInfo > "$build/fuzz-cmake.log" 2>&1 || { cat "$build/fuzz-cmake.log" >&2; exit 1; }
    cmake --build "$build" -j"$(nproc)" --target $(printf 'fuzz_%s ' "${targets[@]}") > "$build/fuzz-build.log" 2>&1 ||
        { tail -30 "$build/fuzz-build.log" >&2; exit 1; }
fi
failed=0
printf '%-16s %12s %10s %8s  %s\n' target executions "exec/s" corpus result
for t in "${targets[@]}"; do
    mkdir -p "$work/$t"
    log="$work/$t.log"
    # ASan's own limits stay on; libFuzzer's catch allocations sized by input
    if ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=0 UBSAN_OPTIONS=print_stacktrace=1 \
        "$build/tests/fuzz/fuzz_$t" -max_total_time="$seconds" -malloc_limit_mb=1024 -rss_limit_mb=3072 \
        -timeout=20 ${EMBER_FUZZ_RUNS:+-runs=$EMBER_FUZZ_RUNS} -print_final_stats=1 -artifact_prefix="$work/$t/" "$work/$t" "tests/fuzz/corpus/$t" \
        > "$log" 2>&1; then
        result=ok
    else
        result="FAILED (see $log)"
        failed=1
    fi
    runs=$(grep -a -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    speed=$(grep -a -o 'stat::average_exec_per_sec: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo 0)
    files=$(find "$work/$t" -maxdepth 1 -type f ! -name 'crash-*' | wc -l)
    printf '%-16s %12s %10s %8s  %s\n' "$t" "$runs" "$speed" "$files" "$result"
    [ "$result" = ok ] || grep -a -m5 -E 'ERROR|invariant|SUMMARY' "$log" >&2 || true
done
exit $failed
