#!/usr/bin/env bash
# Every fuzz target, briefly (tools/fuzz.sh; EMBER_FUZZ_SECONDS each, default
# 15), from its committed seeds, so that a parser change that crashes, leaks
# or breaks an invariant on them or near them fails the tests. The long runs
# and their figures: bench/RESULTS.md, "Reliability". $1: unused.
set -u
cd "$(dirname "$0")/.."
if ! command -v clang > /dev/null; then
    if [ "${EMBER_REQUIRE_WEIGHTS:-0}" = 1 ]; then echo "FAIL: clang is missing (tools/install-deps.sh)" >&2; exit 1; fi
    echo "skip: clang is missing"; exit 77
fi
# a work directory of its own: what a long local run found is not replayed here
export EMBER_FUZZ_WORK=$(mktemp -d /tmp/ember-test-fuzz-XXXXXX)
trap 'rm -rf "$EMBER_FUZZ_WORK"' EXIT
exec tools/fuzz.sh "${EMBER_FUZZ_SECONDS:-15}"
