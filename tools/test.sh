#!/usr/bin/env bash
# The test command (README): set up, then run every test: the C library and
# programs (ctest), then the Python package (tools/test-python.sh: installed
# with pip into a virtual environment outside the repository, then pytest).
# Tests that need the fetched weights must run here, not skip
# (EMBER_REQUIRE_WEIGHTS=1). CUDA tests skip with "no CUDA device" on a
# machine without a GPU. Arguments go to ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/setup.sh
export EMBER_REQUIRE_WEIGHTS=1
ctest --test-dir build --output-on-failure -j"$(nproc)" "$@"
tools/test-python.sh
