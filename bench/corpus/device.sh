#!/usr/bin/env bash
# `ember embed` on a lent GPU machine: the 10k- and 1M-line corpora
# (bench/corpus/make_corpus.py) on the GPU, with one and two models per GPU,
# a run killed with SIGKILL and resumed, cuda:all, and the GPU's vectors
# against the CPU's.
#
#   bench/corpus/device.sh pack   here: bundle a CUDA build of ember (sm_90), its
#                                 shared libraries, an fp16 copy of
#                                 all-MiniLM-L6-v2 and the STS-B files
#   bench/corpus/device.sh run    there (device tool: carry
#                                 ["build-pipe-cuda/pipe-bundle.tar.xz"]):
#                                 writes $OUT/device-pipe.log
#
# pack expects `ember` built with CUDA in $EMBER_CUDA_BUILD (default build-pipe-cuda):
#   cmake -S . -B build-pipe-cuda -DEMBER_CUDA=ON -DEMBER_CUDA_ARCHITECTURES=90 -DEMBER_BUILD_TESTS=OFF
#   cmake --build build-pipe-cuda --target ember
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${EMBER_CUDA_BUILD:-$root/build-pipe-cuda}

pack() {
    set -e
    [ -x "$build/ember" ] || { echo "device.sh: no $build/ember (see the top of this file)" >&2; exit 1; }
    local stage=$build/pipe-bundle
    rm -rf "$stage"
    mkdir -p "$stage"/{bin,lib,models,data}
    cp "$build/ember" "$stage/bin/"
    bash "$root/tools/device-check/bundle-libs.sh" "$stage/lib" "$stage"/bin/*
    python3 "$root/tools/device-check/model_f16.py" "$root/weights/all-MiniLM-L6-v2" "$stage/models/all-MiniLM-L6-v2"
    cp "${EMBER_STSB_DIR:-$root/../shared/data/stsb}"/stsb-*-test.csv "$stage/data/"
    XZ_OPT="-T0 -6" tar -C "$build" -cJf "$build/pipe-bundle.tar.xz" pipe-bundle
    echo "device.sh: $build/pipe-bundle.tar.xz is $(($(stat -c %s "$build/pipe-bundle.tar.xz") / 1048576)) MiB"
}

# One `ember embed` (its summary gives the time, tokens/s, device busy and peak memory).
embed() { # label, then ember embed's arguments
    local label=$1
    shift
    echo "== $label: ember embed $*"
    timeout 200 ember embed "$@" 2>&1 | grep -v '^\s*$'
    echo "exit ${PIPESTATUS[0]}"
}

compare() { # python3 (numpy) comparison of two outputs (a .npy or a shard directory)
    python3 - "$@" <<'EOF'
import json, os, sys
import numpy as np
def load(p):
    if os.path.isdir(p):
        m = json.load(open(os.path.join(p, "manifest.json")))
        return np.concatenate([np.load(os.path.join(p, s["file"])) for s in m["shards"]]).astype(np.float64)
    return np.load(p).astype(np.float64)
a, b = load(sys.argv[1]), load(sys.argv[2])
if a.shape != b.shape:
    print(f"{sys.argv[3]}: shapes differ {a.shape} {b.shape}"); sys.exit(0)
same = int((a == b).all(axis=1).sum())
cos = (a * b).sum(1) / np.maximum(np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1), 1e-30)
print(f"{sys.argv[3]}: {a.shape[0]} rows, {same} bit-identical, max |diff| {np.abs(a - b).max():.3g}, "
      f"min cosine {cos.min():.6f}, mean cosine {cos.mean():.6f}")
EOF
}

run() {
    local out=${OUT:-/tmp/ember-device-out}
    mkdir -p "$out"
    local work
    work=$(mktemp -d)
    tar -C "$work" -xJf "$root/${EMBER_BUNDLE:-build-pipe-cuda/pipe-bundle.tar.xz}"
    local b=$work/pipe-bundle m=$work/pipe-bundle/models/all-MiniLM-L6-v2
    export LD_LIBRARY_PATH="$b/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" PATH="$b/bin:$PATH"
    cd "$work"
    {
        nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
        echo "cores: $(nproc); load: $(cat /proc/loadavg)"
        ember info -m "$m" --device cuda
        python3 "$root/bench/corpus/make_corpus.py" --lines 10000 --stsb "$b/data" --out c10k.txt
        python3 "$root/bench/corpus/make_corpus.py" --lines 1000000 --stsb "$b/data" --out c1m.txt
        ls -la c10k.txt c1m.txt
        embed "10k, GPU fp16" -m "$m" c10k.txt -o g10k.npy --device cuda --dtype fp16
        embed "1M, GPU fp16, 2 models (default)" -m "$m" c1m.txt -o g1m --shard-rows 100000 --device cuda --dtype fp16
        embed "1M, GPU fp16, 1 model" -m "$m" c1m.txt -o g1m-r1.npy --device cuda --dtype fp16 --replicas 1
        echo "== 1M, killed with SIGKILL after 3 shards, then --resume"
        ember embed -m "$m" c1m.txt -o g1m-k --shard-rows 100000 --device cuda --dtype fp16 -q &
        local pid=$!
        for _ in $(seq 1 3000); do grep -q shard-00002 g1m-k/manifest.json 2>/dev/null && break; sleep 0.02; done
        kill -9 $pid; wait $pid; echo "killed: $(grep -c '"file"' g1m-k/manifest.json) shards committed"
        embed "1M resumed" -m "$m" c1m.txt -o g1m-k --shard-rows 100000 --device cuda --dtype fp16 --resume
        for f in g1m/shard-*; do cmp -s "$f" "g1m-k/$(basename "$f")" || echo "DIFFERS: $f"; done
        echo "resumed shards compared with the uninterrupted run's (no DIFFERS line: identical)"
        embed "10k, cuda:all" -m "$m" c10k.txt -o gall.npy --device cuda:all --dtype fp16
        embed "10k, GPU, other batching" -m "$m" c10k.txt -o g10k-b.npy --device cuda --dtype fp16 --window 1000 \
            --max-batch-tokens 2048 --replicas 1
        embed "10k, CPU fp32 (the reference)" -m "$m" c10k.txt -o c10k.npy --device cpu
        compare g10k.npy gall.npy "GPU default vs cuda:all"
        compare g10k.npy g10k-b.npy "GPU default vs GPU other batching"
        compare c10k.npy g10k.npy "CPU fp32 vs GPU fp16"
        compare g1m g1m-r1.npy "1M: 2 models vs 1 model"
    } 2>&1 | tee "$out/device-pipe.log"
    cd /
    rm -rf "$work"
}

case "${1:-}" in
pack) pack ;;
run) run ;;
*) sed -n '2,16p' "$0"; exit 2 ;;
esac
