#!/usr/bin/env bash
# Copy into DIR every shared library the given programs load, except the C
# library, the C++ runtime (a GPU machine's is newer) and CUDA's own (it has
# those, matching its driver). Used by tools/device-check.sh and the
# bench/*/device.sh scripts to make bundles for a lent GPU machine.
#   tools/device-check/bundle-libs.sh DIR PROGRAM...
set -euo pipefail
dir=$1
shift
mkdir -p "$dir"
ldd "$@" | awk '/=> \// {print $3}' | sort -u | while read -r lib; do
    case $(basename "$lib") in
    libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | ld-linux* | libgcc_s.so* | libstdc++.so* | \
        libcuda.so* | libcudart.so* | libcublas.so* | libcublasLt.so*) ;;
    *) cp -L "$lib" "$dir/" ;;
    esac
done
