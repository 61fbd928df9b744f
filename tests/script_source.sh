#!/usr/bin/env bash
# The source tree's shape (tools/check_source.py): no include that points up
# a layer (src/README.md), no function over 100 lines without a reason.
# $1: the ember binary (unused).
set -u
cd "$(dirname "$0")/.."
exec python3 tools/check_source.py
