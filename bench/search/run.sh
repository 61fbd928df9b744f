#!/usr/bin/env bash
# ember search against FAISS (bench_search.py), in a virtual environment
# outside the repository: numpy and faiss-cpu from PyPI.
#   bench/search/run.sh [--rows N] [--queries N] [--threads T]
set -euo pipefail
cd "$(dirname "$0")/../.."
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/ember/bench-search-venv"
if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q numpy==2.4.6 faiss-cpu==1.15.1
fi
exec "$VENV/bin/python" bench/search/bench_search.py --ember build/ember "$@"
