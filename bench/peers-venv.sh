#!/usr/bin/env bash
# The peers' virtual environment (sentence-transformers, ONNX Runtime,
# tokenizers, ... as pinned in bench/requirements.txt), outside the
# repository: made once, remade when requirements.txt changes. Prints its
# python. Used by bench/compare and bench/python_bench.
#
# Environment: EMBER_BENCH_VENV (default ~/.cache/ember-bench/venv).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv=${EMBER_BENCH_VENV:-$HOME/.cache/ember-bench/venv}
stamp=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.ember-requirements" 2>/dev/null)" != "$stamp" ]; then
  echo "peers-venv: installing the peers into $venv (PyPI; torch is large, this takes minutes once)" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install --quiet --upgrade pip >&2
  "$venv/bin/pip" install --quiet -r "$here/requirements.txt" >&2
  echo "$stamp" > "$venv/.ember-requirements"
fi
echo "$venv/bin/python"
