#!/usr/bin/env bash
# ember serve over real sockets: routes, errors, bad input, batching,
# disconnects, slow clients, shutdown, agreement with `ember embed`
# (tests/server/test_server.py; Python's standard library only).
set -euo pipefail
EMBER=$(realpath "$1")
cd "$(dirname "$0")/.."
if ! command -v python3 >/dev/null; then
  if [ "${EMBER_REQUIRE_WEIGHTS:-0}" = 1 ]; then echo "error: python3 is missing" >&2; exit 1; fi
  echo "skip: python3 is missing"; exit 77
fi
exec python3 tests/server/test_server.py "$EMBER"
