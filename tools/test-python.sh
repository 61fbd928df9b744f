#!/usr/bin/env bash
# The Python package's tests (python/tests), run by tools/test.sh after ctest.
# For each interpreter: a virtual environment outside the repository with the
# pinned test requirements (python/requirements-test.txt; made once, remade
# when they change), the checkout installed into it with the README's
# `pip install .` (a persistent CMake build folder, build-python/, makes a
# second install rebuild only what changed), then pytest.
#
#   tools/test-python.sh [pytest arguments]
#
# Python 3.11 (python3) runs every test. Python 3.12, when there is one
# (python3.12, or pyenv's), builds and installs the package too and runs every
# test but Ray's and Spark's, which run once, on the first.
# Environment: EMBER_PYTHONS (default "python3 python3.12"), EMBER_BIN (the
# ember program the tests compare with; default build/ember).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
cache=${XDG_CACHE_HOME:-$HOME/.cache}/ember
export EMBER_BIN=${EMBER_BIN:-$root/build/ember}

# A command, or pyenv's copy of it when the command itself is not usable.
find_python() {
  if command -v "$1" >/dev/null 2>&1 && "$1" -c 'import sys' >/dev/null 2>&1; then
    command -v "$1"
    return
  fi
  local p
  for p in "${PYENV_ROOT:-$HOME/.pyenv}"/versions/*/bin/"$1"; do
    if [ -x "$p" ]; then echo "$p"; return; fi
  done
  return 1
}

# make_venv PYTHON: prints the venv's python, (re)made when the requirements change.
make_venv() {
  local py=$1 ver venv stamp
  ver=$("$py" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
  venv=$cache/py$ver-venv
  stamp="$ver $(sha256sum python/requirements-test.txt | cut -d' ' -f1)"
  if [ ! -x "$venv/bin/python" ] || [ "$(cat "$venv/.ember-requirements" 2>/dev/null)" != "$stamp" ]; then
    echo "test-python: making $venv (Python $ver, python/requirements-test.txt from PyPI)" >&2
    rm -rf "$venv"
    "$py" -m venv "$venv" >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet -r python/requirements-test.txt >&2
    echo "$stamp" > "$venv/.ember-requirements"
  fi
  echo "$venv/bin/python"
}

pythons=${EMBER_PYTHONS:-python3 python3.12}
first=1
for name in $pythons; do
  if ! py=$(find_python "$name"); then
    if [ "$first" = 1 ]; then echo "test-python: error: no $name" >&2; exit 1; fi
    echo "test-python: no $name here: skipped"
    continue
  fi
  vpy=$(make_venv "$py")
  echo "test-python: pip install . ($("$vpy" -V))"
  t0=$(date +%s)
  if ! "$vpy" -m pip install --quiet --force-reinstall --no-deps . > "$cache/pip-install.log" 2>&1; then
    cat "$cache/pip-install.log" >&2
    echo "test-python: error: pip install . failed" >&2
    exit 1
  fi
  echo "test-python: pip install . took $(( $(date +%s) - t0 )) s"
  if [ "$first" = 1 ]; then
    "$vpy" -m pytest python/tests -p no:cacheprovider --timeout=900 --durations=10 "$@"
  else
    "$vpy" -m pytest python/tests -p no:cacheprovider --timeout=900 \
      --ignore=python/tests/test_ray.py --ignore=python/tests/test_spark.py "$@"
  fi
  first=0
done
