#!/usr/bin/env bash
# huggingface_hub's InferenceClient (sentence_similarity)
# against ember serve (tests/server/test_hf_client.py). The pinned client is
# installed into the tests' virtual environment outside the repository when
# missing; without pip the test is skipped, except under EMBER_REQUIRE_WEIGHTS=1 (CI).
set -uo pipefail
EMBER=$(realpath "$1")
cd "$(dirname "$0")/.."
PIN=2.4.0
unavailable() {
  if [ "${EMBER_REQUIRE_WEIGHTS:-0}" = 1 ]; then echo "error: $1" >&2; exit 1; fi
  echo "skip: $1"; exit 77
}
command -v python3 >/dev/null || unavailable "python3 is missing"
has_pin() { "$1" -c "import huggingface_hub as h, sys; sys.exit(h.__version__ != '$PIN')" 2>/dev/null; }
VENV="${XDG_CACHE_HOME:-$HOME/.cache}/ember/test-venv"
if ! has_pin "$VENV/bin/python"; then
  { [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"; } >/dev/null 2>&1 ||
    unavailable "cannot create a virtual environment in $VENV (install python3-venv)"
  "$VENV/bin/python" -m pip install -q "huggingface_hub==$PIN" 2>&1 | tail -3 || true
  has_pin "$VENV/bin/python" || unavailable "cannot pip install huggingface_hub==$PIN into $VENV"
fi
exec "$VENV/bin/python" tests/server/test_hf_client.py "$EMBER"
