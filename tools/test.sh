#!/usr/bin/env bash
# The test command (README): set up, then run every test. Tests that need the
# fetched weights must run here, not skip (EMBER_REQUIRE_WEIGHTS=1). CUDA tests
# skip with "no CUDA device" on a machine without a GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
export EMBER_REQUIRE_WEIGHTS=1
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
