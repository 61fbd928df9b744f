#!/usr/bin/env bash
# ember serve under abuse over real sockets: slow clients, 5,000 idle
# connections, oversized and badly framed requests, pipelining, clients that
# leave mid-request and mid-response, inputs at and past every limit; each
# checked for its status, the server still answering, and its memory back
# near its baseline (tests/server/test_abuse.py; Python's standard library only).
set -euo pipefail
EMBER=$(realpath "$1")
cd "$(dirname "$0")/.."
if ! command -v python3 >/dev/null; then
  if [ "${EMBER_REQUIRE_WEIGHTS:-0}" = 1 ]; then echo "error: python3 is missing" >&2; exit 1; fi
  echo "skip: python3 is missing"; exit 77
fi
exec python3 tests/server/test_abuse.py "$EMBER"
