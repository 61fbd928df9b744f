#!/usr/bin/env bash
# The official `openai` Python client against ember serve, with its default
# base64 encoding (tests/server/test_openai_client.py). The client is
# installed into a virtual environment outside the repository when missing;
# without pip the test is skipped, except under EMBER_REQUIRE_WEIGHTS=1 (CI).
set -uo pipefail
EMBER=$(realpath "$1")
cd "$(dirname "$0")/.."
unavailable() {
  if [ "${EMBER_REQUIRE_WEIGHTS:-0}" = 1 ]; then echo "error: $1" >&2; exit 1; fi
  echo "skip: $1"; exit 77
}
command -v python3 >/dev/null || unavailable "python3 is missing"
PY=python3
if ! "$PY" -c 'import openai' 2>/dev/null; then
  VENV="${XDG_CACHE_HOME:-$HOME/.cache}/ember/test-venv"
  if ! "$VENV/bin/python" -c 'import openai' 2>/dev/null; then
    python3 -m venv "$VENV" >/dev/null 2>&1 || unavailable "cannot create a virtual environment in $VENV (install python3-venv)"
    "$VENV/bin/python" -m pip install -q 'openai>=1.0' 2>&1 | tail -3 || true
    "$VENV/bin/python" -c 'import openai' 2>/dev/null || unavailable "cannot pip install openai into $VENV"
  fi
  PY="$VENV/bin/python"
fi
exec "$PY" tests/server/test_openai_client.py "$EMBER"
