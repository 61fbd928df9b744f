#!/usr/bin/env bash
# ember serve on a lent GPU machine: its tests with every server on CUDA, and
# the load bench (bench/server/run.sh) on the GPU.
#
#   bench/server/device.sh pack   here: bundle a CUDA build of ember (sm_90),
#                                 wrk, their shared libraries, an fp16 copy of
#                                 all-MiniLM-L6-v2, tiny-bert and STS-B
#   bench/server/device.sh run    there (device tool: carry
#                                 ["build-server-cuda/server-bundle.tar.xz"]):
#                                 writes $OUT/device-server.log and $OUT/results.md
#
# pack expects `ember` built with CUDA in $EMBER_CUDA_BUILD (default
# build-server-cuda):
#   cmake -S . -B build-server-cuda -DEMBER_CUDA=ON -DEMBER_CUDA_ARCHITECTURES=90 -DEMBER_BUILD_TESTS=OFF
#   cmake --build build-server-cuda --target ember
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${EMBER_CUDA_BUILD:-$root/build-server-cuda}

pack() {
    set -e
    [ -x "$build/ember" ] || { echo "device.sh: no $build/ember (see the top of this file)" >&2; exit 1; }
    local stage=$build/server-bundle
    rm -rf "$stage"
    mkdir -p "$stage"/{bin,lib,models,data}
    cp "$build/ember" "$(command -v wrk)" "$stage/bin/"
    bash "$root/tools/device-check/bundle-libs.sh" "$stage/lib" "$stage"/bin/*
    python3 "$root/tools/device-check/model_f16.py" "$root/weights/all-MiniLM-L6-v2" "$stage/models/all-MiniLM-L6-v2"
    cp -r "$root/tests/data/tiny-bert" "$stage/models/tiny-bert"
    cp "${EMBER_STSB_DIR:-$root/../shared/data/stsb}/stsb-en-test.csv" "$stage/data/"
    XZ_OPT="-T0 -6" tar -C "$build" -cJf "$build/server-bundle.tar.xz" server-bundle
    echo "device.sh: $build/server-bundle.tar.xz is $(($(stat -c %s "$build/server-bundle.tar.xz") / 1048576)) MiB"
}

run() {
    local out=${OUT:-/tmp/ember-device-out}
    mkdir -p "$out"
    local work
    work=$(mktemp -d)
    tar -C "$work" -xJf "$root/${EMBER_BUNDLE:-build-server-cuda/server-bundle.tar.xz}"
    local b=$work/server-bundle
    export LD_LIBRARY_PATH="$b/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" PATH="$b/bin:$PATH"
    {
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
        echo "cores: $(nproc)"
        "$b/bin/ember" info -m "$b/models/all-MiniLM-L6-v2" --device cuda
        echo "== tests/server/test_server.py, every server on the GPU"
        EMBER_TEST_DEVICE=cuda EMBER_TEST_MINILM="$b/models/all-MiniLM-L6-v2" EMBER_TEST_TOL=1e-4 \
            timeout 240 python3 "$root/tests/server/test_server.py" "$b/bin/ember"
        echo "test_server.py exit $?"
        echo "== bench/server/run.sh on the GPU"
        timeout 240 bash "$root/bench/server/run.sh" --ember "$b/bin/ember" --model "$b/models/all-MiniLM-L6-v2" \
            --csv "$b/data/stsb-en-test.csv" --device cuda --duration 15 --texts 2000 >"$out/results.md"
        echo "run.sh exit $?"
        cat "$out/results.md"
    } 2>&1 | tee "$out/device-server.log"
    rm -rf "$work"
}

case "${1:-}" in
pack) pack ;;
run) run ;;
*) sed -n '2,16p' "$0"; exit 2 ;;
esac
