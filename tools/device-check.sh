#!/usr/bin/env bash
# The one-shot check of the CUDA backend on a lent GPU machine (issue 3).
#
#   tools/device-check.sh pack   on the developer machine: build and bundle
#   tools/device-check.sh run    on the GPU machine: one device call, under 8 minutes
#
# pack builds, for sm_90 only (H100 / H200), in build-devcheck/: the cuda
# tests, ember-devcheck (tools/device-check/devcheck.c) and bench/kernels.
# It writes build-devcheck/bundle.tar.xz with those binaries, every shared
# library they load besides glibc's, the C++ runtime and CUDA's own (the GPU
# machine has cuBLAS; libcriterion, libutf8proc, libjansson, libopenblas,
# libgomp, ... travel), an fp16 copy of all-MiniLM-L6-v2 (the F32 original is
# over the 64 MiB the device tool carries), the tiny model, the STS-B test
# set, BERT's uncased vocabulary and the ptxas register report. Then, with the
# device tool:
#     run  command: bash tools/device-check.sh run
#          carry:   ["build-devcheck/bundle.tar.xz"]     timeout_s: 480
#
# run, on the GPU machine (x86-64, CUDA 13, torch, transformers and
# sentence-transformers, no network):
#   1. the card, the driver, which bundled libraries the machine lacked
#      (meanwhile, on the CPU: random BERTs of the bert-base and MiniLM-L6
#      shapes, fixed seed, and the benchmark inputs);
#   2. every cuda test (and the cpu-labelled host test of the backend), with
#      EMBER_CUDA_SYNC=1 so that a fault names its op; a skip is a failure;
#   3. ember against PyTorch on the same weights: the random BERTs and the
#      real all-MiniLM-L6-v2;
#   4. tokens/s and texts/s of ember and of sentence-transformers fp16 on the
#      same inputs, several batch sizes and lengths; the floors of issue 3;
#      the bert-base 128-token case again with the backend's switches
#      (EMBER_CUDA_ATTENTION=wmma, EMBER_CUDA_GEMM=lt|lt-tune,
#      EMBER_CUDA_FFN_CHUNK) and a per-op profile (EMBER_CUDA_PROFILE=1);
#   5. compute-sanitizer memcheck and racecheck over end-to-end runs (before
#      3 and 4 when a test failed);
#   6. bench/kernels: each kernel's versions validated, then timed.
# Everything goes to $OUT/device-check.log; $OUT/results.md holds the tables
# for bench/RESULTS.md (with the card's name; written after step 4 and again
# at the end); $OUT/results.jsonl the raw numbers. Steps run in that order
# under one time budget (DEVCHECK_BUDGET seconds, default 420, well inside
# the call's 480); a step that no longer fits is skipped and reported.
# DEVCHECK_STEPS (a regular expression over the step names printed in the
# summary) runs a subset, for a short recheck.
set -uo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
here=$root/tools/device-check
build=${DEVCHECK_BUILD:-$root/build-devcheck}

pack() {
    set -e
    local archs=${DEVCHECK_ARCHS:-90}
    local targets=(test_cuda_kernels test_cuda_model test_cuda_host ember-devcheck
                   bench_layernorm bench_attention bench_activation bench_pool bench_matmul)
    echo "device-check pack: building ${targets[*]} for sm_${archs} in $build"
    mkdir -p "$build"
    cmake -S "$root" -B "$build" -DEMBER_CUDA=ON -DEMBER_CUDA_ARCHITECTURES="$archs" \
        -DCMAKE_BUILD_TYPE=Release -DEMBER_BUILD_TESTS=ON >"$build/configure.log" 2>&1 ||
        { cat "$build/configure.log"; exit 1; }
    rm -f "$build"/kernels/CMakeFiles/ember_cuda.dir/*.o # so that the log holds every kernel's ptxas report
    cmake --build "$build" -j"$(nproc)" --target "${targets[@]}" >"$build/build.log" 2>&1 ||
        { grep -B5 -A20 -E "error|Error" "$build/build.log" | head -80; exit 1; }

    local stage=$build/bundle
    rm -rf "$stage"
    mkdir -p "$stage"/{bin,lib,models,data}
    cp "$build"/tests/cuda/test_cuda_{kernels,model,host} "$build"/tools/device-check/ember-devcheck \
        "$build"/bench/kernels/bench_{layernorm,attention,activation,pool,matmul} "$stage/bin/"
    bash "$root/tools/device-check/bundle-libs.sh" "$stage/lib" "$stage"/bin/*
    if [ -f "$root/weights/all-MiniLM-L6-v2/model.safetensors" ]; then
        python3 "$here/model_f16.py" "$root/weights/all-MiniLM-L6-v2" "$stage/models/all-MiniLM-L6-v2"
    else
        echo "device-check pack: weights/all-MiniLM-L6-v2 missing (weights/fetch.sh): the run will use a random MiniLM-shaped model"
    fi
    cp -r "$root/tests/data/tiny-bert" "$stage/models/tiny-bert"
    cp -r "$root/tests/data/tiny-mpnet" "$stage/models/tiny-mpnet"
    local stsb=${EMBER_STSB_DIR:-$root/../shared/data/stsb}
    cp "$stsb/stsb-en-test.csv" "$stage/data/"
    if [ -f "$root/weights/all-MiniLM-L6-v2/vocab.txt" ]; then
        cp "$root/weights/all-MiniLM-L6-v2/vocab.txt" "$stage/data/vocab-uncased.txt"
    fi
    bash "$here/ptxas-summary.sh" "$build/build.log" >"$stage/ptxas.txt"
    {
        echo "ember device-check bundle, $(date -u +%Y-%m-%dT%H:%MZ)"
        echo "commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null) ($(git -C "$root" status --short 2>/dev/null | wc -l) files changed or new)"
        echo "built for sm_$archs with $(nvcc --version | tail -1)"
        (cd "$stage" && find . -type f -printf '%10s  %p\n' | sort -k2)
    } >"$stage/MANIFEST"
    rm -f "$build/bundle.tar.xz"
    XZ_OPT="-T0 -6" tar -C "$build" -cJf "$build/bundle.tar.xz" bundle
    local mib tree
    mib=$(($(stat -c %s "$build/bundle.tar.xz") / 1048576))
    tree=$(($(cd "$root" && git ls-files -co --exclude-standard -z | du -cb --files0-from=- | tail -1 | cut -f1) / 1048576))
    echo "device-check pack: $build/bundle.tar.xz is $mib MiB; the working tree $tree MiB (the device tool carries 64 MiB in all)"
    [ $((mib + tree)) -lt 63 ] || echo "device-check pack: WARNING: over the device tool's 64 MiB"
    echo "ptxas report of the hot kernels (sm_$archs):"
    grep -E "attention|layernorm|bias_act|pool" "$stage/ptxas.txt" | cut -c1-150 || true
    echo "now: device run, command 'bash tools/device-check.sh run', carry [\"${build#$root/}/bundle.tar.xz\"], timeout_s 480"
}

# ---- run ------------------------------------------------------------------------------------------

budget=${DEVCHECK_BUDGET:-420}
start=$SECONDS
summary=()
failures=0

# step NAME LIMIT_SECONDS COMMAND...: run under what is left of the budget.
step() {
    local name=$1 limit=$2
    shift 2
    # DEVCHECK_STEPS: an extended regular expression; only steps whose name matches run
    if [ -n "${DEVCHECK_STEPS:-}" ] && ! [[ $name =~ $DEVCHECK_STEPS ]]; then
        summary+=("SKIPPED   $name (not in DEVCHECK_STEPS)")
        return 0
    fi
    local left=$((budget - (SECONDS - start)))
    if [ "$left" -lt 15 ]; then
        echo "=== $name: SKIPPED (the time budget is spent)"
        summary+=("SKIPPED   $name (out of time)")
        return 0
    fi
    [ "$limit" -le "$left" ] || limit=$left
    echo
    echo "=== $name (limit ${limit}s, $((SECONDS - start))s into the check)"
    local t0=$SECONDS rc
    timeout -k 5 "$limit" "$@"
    rc=$?
    local took=$((SECONDS - t0))
    if [ "$rc" -eq 0 ]; then
        summary+=("PASS      $name (${took}s)")
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        summary+=("TIMEOUT   $name (after ${took}s)")
        failures=$((failures + 1))
    else
        summary+=("FAIL $rc    $name (${took}s)")
        failures=$((failures + 1))
    fi
    return 0
}

run() {
    local out=${OUT:-$build/out}
    mkdir -p "$out"
    # Everything to the log too; the tee is waited for at the end, so that the
    # log under $OUT is complete when the device tool collects it.
    exec 3>&1 4>&2
    exec > >(tee -a "$out/device-check.log") 2>&1
    local tee_pid=$!
    export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=true
    local work=${DEVCHECK_WORK:-/tmp/ember-devcheck}
    rm -rf "$work"
    mkdir -p "$work"
    if [ ! -f "$build/bundle.tar.xz" ]; then
        echo "device-check: $build/bundle.tar.xz is missing: run 'tools/device-check.sh pack' here first and carry it"
        exit 1
    fi
    tar -C "$work" -xJf "$build/bundle.tar.xz"
    local bundle=$work/bundle bin=$work/bundle/bin
    echo "=== ember device check, $(date -u +%Y-%m-%dT%H:%MZ)"
    head -3 "$bundle/MANIFEST"

    local minilm=$bundle/models/all-MiniLM-L6-v2 tiny=$bundle/models/tiny-bert vocab=$bundle/data/vocab-uncased.txt
    local models=$work/models texts=$work/texts
    # The random models and the benchmark inputs are made on the CPU while
    # the tests run (the first steps that need them wait for them); 4 threads,
    # so that the tests' CPU references keep most of the cores.
    OMP_NUM_THREADS=4 timeout -k 5 150 python3 "$here/make_models.py" "$models" "$vocab" >"$work/make_models.log" 2>&1 &
    local models_pid=$!
    timeout -k 5 60 python3 "$here/gen_texts.py" "$vocab" "$bundle/data/stsb-en-test.csv" "$texts" \
        >"$work/gen_texts.log" 2>&1 &
    local texts_pid=$!

    echo
    echo "=== the card"
    local card
    card=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
    nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit --format=csv
    nvcc --version 2>/dev/null | tail -2
    python3 -c "import torch, transformers, sentence_transformers as st; print('torch', torch.__version__, '| transformers', transformers.__version__, '| sentence-transformers', st.__version__)"
    nproc
    uname -m

    echo
    echo "=== libraries"
    local cublas_dir
    cublas_dir=$(ldconfig -p | awk '/libcublas\.so\.13 / {print $NF; exit}' | xargs -r dirname)
    if [ -z "$cublas_dir" ]; then
        local f
        f=$(find /usr/local /usr/lib /opt -name 'libcublas.so.13' 2>/dev/null | head -1)
        [ -n "$f" ] || f=$(python3 -c "import nvidia, pathlib; p = next(pathlib.Path(list(nvidia.__path__)[0]).rglob('libcublas.so.13')); print(p)" 2>/dev/null)
        cublas_dir=$(dirname "$f" 2>/dev/null)
    fi
    echo "libcublas.so.13 from: ${cublas_dir:-NOT FOUND}"
    mkdir -p "$bundle/lib-used"
    local missing
    missing=$(for b in "$bin"/*; do LD_LIBRARY_PATH=$cublas_dir ldd "$b"; done | awk '/not found/ {print $1}' | sort -u)
    for lib in $missing; do
        if [ -f "$bundle/lib/$lib" ]; then ln -sf "$bundle/lib/$lib" "$bundle/lib-used/$lib"; fi
    done
    # the libraries those need in turn (e.g. libgfortran for libopenblas)
    for _ in 1 2 3; do
        for lib in $(LD_LIBRARY_PATH=$bundle/lib-used:$cublas_dir ldd "$bin"/* "$bundle"/lib-used/* 2>/dev/null |
            awk '/not found/ {print $1}' | sort -u); do
            [ -f "$bundle/lib/$lib" ] && ln -sf "$bundle/lib/$lib" "$bundle/lib-used/$lib"
        done
    done
    echo "missing on this machine, taken from the bundle: $(ls "$bundle/lib-used" | tr '\n' ' ')"
    export LD_LIBRARY_PATH=$bundle/lib-used:$cublas_dir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    local still
    still=$(ldd "$bin"/* | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
    [ -z "$still" ] || echo "STILL MISSING: $still"

    if [ ! -d "$minilm" ]; then
        echo "no all-MiniLM-L6-v2 in the bundle: using the random MiniLM-shaped model instead"
        minilm=$models/minilm-l6-random
    fi
    export EMBER_TINY_DIR=$tiny EMBER_MINILM_DIR=$minilm EMBER_STSB_DIR=$bundle/data EMBER_REQUIRE_WEIGHTS=1
    export EMBER_TINY_MPNET_DIR=$bundle/models/tiny-mpnet

    echo
    echo "=== ptxas report of the hot kernels (sm_90, from the build)"
    grep -E "attention|<__half, [23]>|bias_act_kernel<__half, 0>|pool_kernel<__half>" "$bundle/ptxas.txt" |
        grep -v "sm_8" | cut -c1-150

    # Token ids for the sanitizer runs. With --max-batch-tokens 64 (tiny) and
    # 256 (MiniLM), the forwards see batches whose longest sequence is <= 16,
    # <= 32 and > 32 tokens: every attention tile width (1, 2, 4 warps).
    printf '2 50 60 3\n2\n%s\n%s\n%s\n' "$(seq -s ' ' 100 162)" "$(seq -s ' ' 200 219)" "$(seq -s ' ' 300 309)" \
        >"$work/ids-tiny.txt" # tiny: 600 ids, 64 positions: batches [4 1] [63] [20 10]
    printf '101 7592 2088 102\n101\n%s\n%s\n%s\n' "$(seq -s ' ' 3000 3019)" "$(seq -s ' ' 1000 1255)" \
        "$(seq -s ' ' 2000 2070)" >"$work/ids-minilm.txt" # batches [4 1 20] [256] [71]
    local results=$out/results.jsonl
    touch "$results"

    # 2. tests; EMBER_CUDA_SYNC=1 so that a fault names the op that made it
    if [ ! -d "$bundle/models/all-MiniLM-L6-v2" ]; then
        echo "waiting for the random models (the MiniLM tests use one)"
        wait "$models_pid"
    fi
    step "test_cuda_host (cpu label)" 45 env EMBER_CUDA_SYNC=1 bash "$0" _test "$bin/test_cuda_host"
    step "test_cuda_kernels" 120 env EMBER_CUDA_SYNC=1 bash "$0" _test "$bin/test_cuda_kernels"
    step "test_cuda_model" 120 env EMBER_CUDA_SYNC=1 bash "$0" _test "$bin/test_cuda_model"

    # 3. compute-sanitizer (right away when a test failed: then where it
    # breaks matters more than how fast it runs; else after the numbers)
    local sanitized=0
    if [ "$failures" -gt 0 ]; then
        sanitize
        sanitized=1
    fi

    # 4. ember against PyTorch on the same weights
    wait "$models_pid" 2>/dev/null
    echo
    echo "=== random models:"
    grep -E "^make_models:|Error" "$work/make_models.log" || tail -5 "$work/make_models.log"
    step "ember vs PyTorch" 120 python3 "$here/torch_compare.py" "$bin/ember-devcheck" "$results" \
        "$models/bert-base-random" "$minilm" "$models/minilm-l6-random"

    # 5. throughput, ember and sentence-transformers fp16, same inputs
    wait "$texts_pid" 2>/dev/null
    echo "=== benchmark inputs: $(tail -1 "$work/gen_texts.log")"
    local minilm_inputs=$texts/stsb.txt,$texts/len32.txt,$texts/len128.txt,$texts/len512.txt
    local bert_inputs=$texts/len32.txt,$texts/len128.txt,$texts/len512.txt
    step "ember: bert-base shape, 128-token sequences (model only)" 40 bash -o pipefail -c \
        "'$bin/ember-devcheck' bench-ids '$models/bert-base-random' --dtype fp16 --len 128 --count 4096 --seconds 2 | tee -a '$results'"
    # the same with the backend's switches: the first tensor-core attention
    # kernel (wmma, the 2026-11-26 baseline), the FFN in token chunks that fit
    # in L2, and a per-op profile (CUDA events; printed, not tabled)
    local ids128="'$bin/ember-devcheck' bench-ids '$models/bert-base-random' --dtype fp16 --len 128 --count 4096"
    local v
    for v in "wmma attention|EMBER_CUDA_ATTENTION=wmma" "cuBLASLt|EMBER_CUDA_GEMM=lt" \
        "cuBLASLt tuned|EMBER_CUDA_GEMM=lt-tune" "FFN chunks of 2048|EMBER_CUDA_FFN_CHUNK=2048" \
        "FFN chunks of 4096|EMBER_CUDA_FFN_CHUNK=4096"; do
        step "ember: bert-base shape, 128 tokens, ${v%%|*}" 30 env "${v#*|}" EMBER_DEVCHECK_ENGINE="ember (${v%%|*})" \
            bash -o pipefail -c "$ids128 --seconds 2 | tee -a '$results'"
    done
    step "ember: bert-base shape, 128 tokens, cuBLASLt tuned, per-op profile" 30 env EMBER_CUDA_GEMM=lt-tune \
        EMBER_CUDA_PROFILE=1 bash -c "$ids128 --seconds 1"
    step "ember: bert-base shape, 128 tokens, per-op profile" 30 env EMBER_CUDA_PROFILE=1 \
        bash -c "$ids128 --seconds 1"
    step "ember: MiniLM STS-B batch 512, per-op profile" 30 env EMBER_CUDA_PROFILE=1 \
        "$bin/ember-devcheck" bench "$minilm" --dtype fp16 --texts "$texts/stsb.txt" --batches 512 --seconds 0.5
    step "ember: MiniLM texts" 50 bash -o pipefail -c \
        "'$bin/ember-devcheck' bench '$minilm' --dtype fp16 --texts '$minilm_inputs' --batches 32,128,512 --seconds 0.5 | tee -a '$results'"
    step "ember: MiniLM STS-B, 4 threads" 25 bash -o pipefail -c \
        "'$bin/ember-devcheck' bench '$minilm' --dtype fp16 --texts '$texts/stsb.txt' --batches 32,128,512 --threads 4 --seconds 0.5 | tee -a '$results'"
    step "sentence-transformers fp16: MiniLM" 75 bash -o pipefail -c \
        "python3 '$here/st_bench.py' '$minilm' '$minilm_inputs' 32,128,512 0.5 | tee -a '$results'"
    step "ember: bert-base texts" 45 bash -o pipefail -c \
        "'$bin/ember-devcheck' bench '$models/bert-base-random' --dtype fp16 --texts '$bert_inputs' --batches 32,128,512 --seconds 0.5 | tee -a '$results'"
    step "sentence-transformers fp16: bert-base" 70 bash -o pipefail -c \
        "python3 '$here/st_bench.py' '$models/bert-base-random' '$bert_inputs' 32,128,512 0.5 | tee -a '$results'"
    step "ember: bert-base shape, 512-token sequences (model only)" 25 bash -o pipefail -c \
        "'$bin/ember-devcheck' bench-ids '$models/bert-base-random' --dtype fp16 --len 512 --count 512 --seconds 1 | tee -a '$results'"
    # the table now, in case what follows runs out of time
    python3 "$here/report.py" "$results" "$card" >"$out/results.md" 2>&1

    [ "$sanitized" -eq 1 ] || sanitize

    # 6. each kernel's versions, validated then timed
    local b
    for b in attention matmul layernorm activation pool; do
        step "bench/kernels: bench_$b" 45 "$bin/bench_$b"
    done

    echo
    echo "=== results (for bench/RESULTS.md)"
    python3 "$here/report.py" "$results" "$card" >"$out/results.md" 2>&1
    cat "$out/results.md"
    echo
    echo "=== summary: $card, $((SECONDS - start))s of a ${budget}s budget"
    printf '  %s\n' "${summary[@]}"
    echo "  libraries taken from the bundle: $(ls "$bundle/lib-used" | tr '\n' ' ')"
    local rc=0
    [ "$failures" -eq 0 ] && echo "device check: every step passed" || { echo "device check: $failures step(s) failed"; rc=1; }
    exec 1>&3 2>&4 3>&- 4>&-
    wait "$tee_pid" 2>/dev/null
    return "$rc"
}

# compute-sanitizer over end-to-end runs: every kernel, both attention
# kernels (fp16/bf16 on tensor cores, fp32 scalar), head sizes 32 and 64,
# every tile width. Uses run()'s variables.
sanitize() {
    local san
    san=$(command -v compute-sanitizer || echo /usr/local/cuda/bin/compute-sanitizer)
    local -x EMBER_CUDA_SYNC=1 # a fault is reported against the op that made it
    local -a mem=("$san" --tool memcheck --error-exitcode 3 --leak-check no)
    local -a dc=("$bin/ember-devcheck" embed)
    # racecheck: cuBLAS's Hopper GEMMs (nvjet_*, TMA and async barriers)
    # gave 54 hazard reports in the first 2026-11-26 run; excluding them with
    # --kernel-name-exclude made the sanitizer itself fail ("failed to handle a
    # hardware exception") in the second. So everything is instrumented and
    # _racecheck fails on any hazard outside those kernels.
    local -a race=(bash "$0" _racecheck "$san")
    step "compute-sanitizer memcheck, MiniLM fp16" 60 "${mem[@]}" \
        "${dc[@]}" "$minilm" --ids "$work/ids-minilm.txt" --max-batch-tokens 256 --out "$work/san.bin" --dtype fp16
    step "compute-sanitizer memcheck, MiniLM fp32 (scalar attention)" 60 "${mem[@]}" \
        "${dc[@]}" "$minilm" --ids "$work/ids-minilm.txt" --max-batch-tokens 256 --out "$work/san.bin" --dtype fp32
    step "compute-sanitizer racecheck, MiniLM fp16" 90 "${race[@]}" \
        "${dc[@]}" "$minilm" --ids "$work/ids-minilm.txt" --max-batch-tokens 256 --out "$work/san.bin" --dtype fp16
    local dt
    for dt in bf16 fp16 fp32; do
        step "compute-sanitizer memcheck, tiny $dt" 30 "${mem[@]}" \
            "${dc[@]}" "$tiny" --ids "$work/ids-tiny.txt" --max-batch-tokens 64 --out "$work/san.bin" --dtype $dt
    done
    wait "$models_pid" 2>/dev/null # run()'s: a model still being written is no model
    if [ -f "$models/bert-base-random/model.safetensors" ]; then # head size 64
        step "compute-sanitizer memcheck, bert-base shape fp16" 60 "${mem[@]}" \
            "${dc[@]}" "$models/bert-base-random" --ids "$work/ids-minilm.txt" --out "$work/san.bin" --dtype fp16
        step "compute-sanitizer racecheck, bert-base shape bf16" 90 "${race[@]}" \
            "${dc[@]}" "$models/bert-base-random" --ids "$work/ids-minilm.txt" --out "$work/san.bin" --dtype bf16
    fi
}

# A test binary that must run, not skip: on the GPU machine any skip ("no
# CUDA device", a missing model) is a failure.
run_test() {
    local log
    log=$(mktemp)
    "$1" --jobs 1 --verbose 2>&1 | tee "$log" | grep -v '^\[RUN \]'
    local rc=${PIPESTATUS[0]}
    if grep -q '^\[SKIP\]' "$log"; then
        echo "device-check: $(basename "$1") skipped tests (above): counted as a failure"
        rc=1
    fi
    grep -q "Failing: 0 | Crashing: 0" "$log" || rc=1
    rm -f "$log"
    return "$rc"
}

# racecheck SANITIZER COMMAND...: the command must succeed, and every access
# in a hazard report must be in cuBLAS's own kernels (nvjet_*).
run_racecheck() {
    local san=$1 log
    shift
    log=$(mktemp)
    "$san" --tool racecheck --print-limit 100000 "$@" >"$log" 2>&1
    local rc=$?
    grep -vE "^=========  " "$log" | head -20
    # a hazard is reported as "Race reported between Read access at KERNEL+0x..."
    # and "and Write access at KERNEL+0x... [N hazards]"
    local accesses ours
    accesses=$(grep -cE "access at " "$log")
    ours=$(grep -E "access at " "$log" | grep -vc nvjet)
    echo "racecheck: $accesses accesses named in hazard reports, $ours of them outside cuBLAS's nvjet kernels"
    local hazards
    hazards=$(sed -n 's/.*RACECHECK SUMMARY: \([0-9]*\) hazard.*/\1/p' "$log" | tail -1)
    if [ "${hazards:-0}" -gt 0 ] && [ "$accesses" -eq 0 ]; then
        echo "racecheck: $hazards hazards, but no access lines to attribute them: counted as a failure"
        sed -n '1,60p' "$log"
        rc=1
    fi
    if [ "$ours" -gt 0 ]; then
        grep -E "access at " "$log" | grep -v nvjet | head -40
        rc=1
    fi
    rm -f "$log"
    return "$rc"
}

case ${1:-} in
pack) pack ;;
run) run ;;
_test) run_test "$2" ;;
_racecheck)
    shift
    run_racecheck "$@"
    ;;
*)
    sed -n '2,40p' "$0"
    exit 2
    ;;
esac
