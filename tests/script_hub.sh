#!/usr/bin/env bash
# Models by name (tests/hub/test_hub.py): `ember pull` and `--model ID` against
# a Hugging Face Hub on loopback (tests/hub/fake_hub.py), and the cache shared
# with the real huggingface_hub both ways. huggingface_hub is installed into
# the tests' virtual environment outside the repository when missing; without
# it those tests are skipped, except under EMBER_REQUIRE_WEIGHTS=1 (CI).
set -uo pipefail
EMBER=$(realpath "$1")
cd "$(dirname "$0")/.."
if ! command -v python3 >/dev/null; then
  if [ "${EMBER_REQUIRE_WEIGHTS:-0}" = 1 ]; then echo "error: python3 is missing" >&2; exit 1; fi
  echo "skip: python3 is missing"; exit 77
fi
if python3 -c 'import huggingface_hub' 2>/dev/null; then
  export EMBER_TEST_HF_PYTHON=python3
else
  VENV="${XDG_CACHE_HOME:-$HOME/.cache}/ember/test-venv"
  if ! "$VENV/bin/python" -c 'import huggingface_hub' 2>/dev/null; then
    { [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"; } >/dev/null 2>&1 &&
      "$VENV/bin/python" -m pip install -q huggingface_hub 2>&1 | tail -3
  fi
  if "$VENV/bin/python" -c 'import huggingface_hub' 2>/dev/null; then
    export EMBER_TEST_HF_PYTHON="$VENV/bin/python"
  else
    echo "note: cannot pip install huggingface_hub into $VENV: its tests will skip"
  fi
fi
[ -n "${EMBER_TEST_HF_PYTHON:-}" ] &&
  echo "huggingface_hub $("$EMBER_TEST_HF_PYTHON" -c 'import huggingface_hub as h; print(h.__version__)')"
exec python3 tests/hub/test_hub.py "$EMBER"
