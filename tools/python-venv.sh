#!/usr/bin/env bash
# A virtual environment outside the repository with the checkout installed
# (the README's `pip install .`) and the pinned test requirements
# (python/requirements-test.txt): made once per Python version, remade when
# the requirements change; the package is reinstalled every time (the
# persistent CMake build folder, build-python/, makes that incremental).
#
#   tools/python-venv.sh [PYTHON]     (default python3; prints the venv's python)
#
# Used by tools/test-python.sh and bench/python_bench. Progress goes to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
py=${1:-python3}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/ember
ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
venv=$cache/py$ver-venv
stamp="$ver $(sha256sum python/requirements-test.txt | cut -d' ' -f1)"
if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.ember-requirements" 2>/dev/null)" != "$stamp" ]; then
  echo "python-venv: making $venv (Python $ver, python/requirements-test.txt from PyPI)" >&2
  rm -rf "$venv"
  "$py" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
  "$venv/bin/python" -m pip install --quiet -r python/requirements-test.txt >&2
  echo "$stamp" > "$venv/.ember-requirements"
fi
mkdir -p "$cache"
log=$cache/pip-install-py$ver.log
t0=$(date +%s)
if ! "$venv/bin/python" -m pip install --force-reinstall --no-deps . > "$log" 2>&1; then
  tail -40 "$log" >&2
  echo "python-venv: error: pip install . failed (the whole log: $log)" >&2
  exit 1
fi
echo "python-venv: pip install . into $venv took $(( $(date +%s) - t0 )) s" >&2
echo "$venv/bin/python"
