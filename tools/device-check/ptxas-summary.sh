#!/usr/bin/env bash
# One line per (kernel, architecture) from a build log made with -Xptxas -v:
#   registers, spill stores/loads, stack frame, shared memory (static).
#   tools/device-check/ptxas-summary.sh build.log [filter-regex]
set -euo pipefail
log=${1:?usage: ptxas-summary.sh build.log [regex]}
filter=${2:-.}
awk -v filter="$filter" '
  /Compiling entry function/ { match($0, /function \x27[^\x27]+\x27/); fn = substr($0, RSTART + 10, RLENGTH - 11);
                               match($0, /for \x27sm_[0-9a-z]+\x27/); arch = substr($0, RSTART + 5, RLENGTH - 6); next }
  /bytes stack frame/        { stack = $1; spst = $5; spld = $9; next }
  /Used [0-9]+ registers/    { match($0, /Used [0-9]+ registers/); regs = substr($0, RSTART + 5, RLENGTH - 15);
                               smem = 0; if (match($0, /[0-9]+ bytes smem/)) smem = substr($0, RSTART, RLENGTH - 11);
                               if (fn ~ filter && !seen[fn "," arch]++)
                                 printf "%-6s %4s regs  spill %3s/%-3s  stack %3s  smem %6s  %s\n", arch, regs, spst, spld, stack, smem, fn }
' "$log" | { if command -v c++filt >/dev/null; then c++filt; else cat; fi; }
