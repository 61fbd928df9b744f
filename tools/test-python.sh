#!/usr/bin/env bash
# The Python package's tests (python/tests), run by tools/test.sh after ctest:
# for each interpreter, the checkout installed with `pip install .` into a
# virtual environment outside the repository with the pinned test
# requirements (tools/python-venv.sh), then pytest.
#
#   tools/test-python.sh [pytest arguments]
#
# Python 3.11 (python3) runs every test. Python 3.12, when there is one
# (python3.12, or pyenv's), is built and installed too and runs every test but
# Ray's and Spark's, which run once, on the first.
# Environment: EMBER_PYTHONS (default "python3 python3.12"), EMBER_BIN (the
# ember program the tests compare with; default build/ember).
set -euo pipefail
cd "$(dirname "$0")/.."
export EMBER_BIN=${EMBER_BIN:-$PWD/build/ember}

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

first=1
for name in ${EMBER_PYTHONS:-python3 python3.12}; do
  if ! py=$(find_python "$name"); then
    if [ "$first" = 1 ]; then echo "test-python: error: no $name" >&2; exit 1; fi
    echo "test-python: no $name here: skipped"
    continue
  fi
  vpy=$(tools/python-venv.sh "$py")
  echo "test-python: pytest with $("$vpy" -V)"
  if [ "$first" = 1 ]; then
    "$vpy" -m pytest python/tests -p no:cacheprovider --timeout=900 --durations=10 "$@"
  else
    "$vpy" -m pytest python/tests -p no:cacheprovider --timeout=900 \
      --ignore=python/tests/test_ray.py --ignore=python/tests/test_spark.py "$@"
  fi
  first=0
done
