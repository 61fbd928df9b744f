/* Shared by the per-kernel benchmarks (llm.c dev/cuda style): every version
 * of a kernel is first validated against the CPU twin on the same random
 * inputs (output poisoned first), then timed alone with CUDA events, the L2
 * cache flushed before each repetition, the median reported.
 *
 * To try a faster version: add a kernel and its launcher to the family's
 * bench file, give it the next version number in its table, build
 * (cmake --build build-cuda --target bench_<family>) and run
 * bench_<family> [version]. The validation runs first; a version that fails
 * it is not timed. */
#ifndef EMBER_BENCH_COMMON_CUH
#define EMBER_BENCH_COMMON_CUH

#include <algorithm>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <vector>

extern "C" {
#include "backend/cpu_ops.h"
#include "backend/cuda_layout.h"
}

#define BENCH_CHECK(call)                                                                                             \
    do {                                                                                                              \
        cudaError_t e_ = (call);                                                                                      \
        if (e_ != cudaSuccess) {                                                                                      \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call, cudaGetErrorString(e_));                    \
            exit(1);                                                                                                  \
        }                                                                                                             \
    } while (0)

static uint64_t bench_rng = 0x9e3779b97f4a7c15ull;
static inline float bench_uniform(float lo, float hi) {
    bench_rng ^= bench_rng << 13;
    bench_rng ^= bench_rng >> 7;
    bench_rng ^= bench_rng << 17;
    return lo + (hi - lo) * (float)((bench_rng >> 40) * (1.0 / 16777216.0));
}

/* n random values rounded to dtype, on the host (fp32) and on the device (dtype). */
struct bench_tensor {
    std::vector<float> host;
    void *dev = nullptr;
    size_t n = 0;
    ember_dtype dtype = EMBER_DTYPE_FP32;
};

static inline void bench_tensor_random(bench_tensor &t, size_t n, float lo, float hi, ember_dtype dt) {
    t.n = n;
    t.dtype = dt;
    t.host.resize(n);
    for (size_t i = 0; i < n; i++) t.host[i] = dtype_round(bench_uniform(lo, hi), dt);
    std::vector<uint8_t> raw(n * dtype_size(dt));
    f32_to_dtype(raw.data(), t.host.data(), n, dt);
    if (t.dev) cudaFree(t.dev);
    BENCH_CHECK(cudaMalloc(&t.dev, raw.size() ? raw.size() : 1));
    BENCH_CHECK(cudaMemcpy(t.dev, raw.data(), raw.size(), cudaMemcpyHostToDevice));
}

static inline void *bench_alloc(size_t bytes) {
    void *d;
    BENCH_CHECK(cudaMalloc(&d, bytes ? bytes : 1));
    return d;
}

static inline std::vector<float> bench_download(const void *d, size_t n, ember_dtype dt) {
    std::vector<uint8_t> raw(n * dtype_size(dt));
    BENCH_CHECK(cudaDeviceSynchronize());
    BENCH_CHECK(cudaMemcpy(raw.data(), d, raw.size(), cudaMemcpyDeviceToHost));
    std::vector<float> out(n);
    dtype_to_f32(out.data(), raw.data(), n, dt);
    return out;
}

/* |got - ref| <= atol + rtol |ref| and finite everywhere; prints the worst. */
static inline bool bench_validate(const char *what, const std::vector<float> &got, const std::vector<float> &ref,
                                  float atol, float rtol) {
    size_t bad = 0, worst = 0;
    double worst_ratio = 0;
    for (size_t i = 0; i < ref.size(); i++) {
        double d = fabs((double)got[i] - ref[i]), tol = atol + rtol * fabs((double)ref[i]);
        double ratio = std::isfinite(got[i]) ? d / tol : INFINITY;
        if (ratio > 1) bad++;
        if (ratio > worst_ratio) {
            worst_ratio = ratio;
            worst = i;
        }
    }
    if (bad)
        printf("  %-40s INVALID: %zu of %zu outside tolerance; worst [%zu] got %g expected %g\n", what, bad, ref.size(),
               worst, got[worst], ref[worst]);
    return bad == 0;
}

/* A buffer twice the L2 size, written before each timed run so that no
 * input is served from L2. */
struct l2_flusher {
    void *buf = nullptr;
    size_t bytes = 0;
    l2_flusher() {
        int dev, l2;
        BENCH_CHECK(cudaGetDevice(&dev));
        BENCH_CHECK(cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, dev));
        bytes = 2 * (size_t)l2;
        BENCH_CHECK(cudaMalloc(&buf, bytes));
    }
    ~l2_flusher() { cudaFree(buf); }
    void flush() { BENCH_CHECK(cudaMemsetAsync(buf, 0, bytes, 0)); }
};

/* Median milliseconds of `repeats` runs of fn (after 3 warm-ups), each timed
 * with events around the launch alone, L2 flushed before each. */
template <typename F> static inline float bench_time_ms(F fn, int repeats = 25) {
    static l2_flusher flusher;
    cudaEvent_t start, stop;
    BENCH_CHECK(cudaEventCreate(&start));
    BENCH_CHECK(cudaEventCreate(&stop));
    for (int i = 0; i < 3; i++) BENCH_CHECK(fn());
    std::vector<float> ms(repeats);
    for (int i = 0; i < repeats; i++) {
        flusher.flush();
        BENCH_CHECK(cudaEventRecord(start, 0));
        BENCH_CHECK(fn());
        BENCH_CHECK(cudaEventRecord(stop, 0));
        BENCH_CHECK(cudaEventSynchronize(stop));
        BENCH_CHECK(cudaEventElapsedTime(&ms[i], start, stop));
    }
    cudaEventDestroy(start);
    cudaEventDestroy(stop);
    std::sort(ms.begin(), ms.end());
    return ms[repeats / 2];
}

static inline void bench_print_device(void) {
    cudaDeviceProp p;
    int dev;
    BENCH_CHECK(cudaGetDevice(&dev));
    BENCH_CHECK(cudaGetDeviceProperties(&p, dev));
    printf("device: %s (sm_%d%d, %d SMs, %.0f MiB L2)\n", p.name, p.major, p.minor, p.multiProcessorCount,
           p.l2CacheSize / 1048576.0);
}

static const ember_dtype BENCH_DTYPES[3] = {EMBER_DTYPE_FP32, EMBER_DTYPE_FP16, EMBER_DTYPE_BF16};

/* argv: [version] [dtype]: 0 / absent means all. */
static inline void bench_args(int argc, char **argv, int *version, int *dtype) {
    *version = argc > 1 ? atoi(argv[1]) : 0;
    *dtype = -1;
    if (argc > 2) {
        if (!strcmp(argv[2], "fp32")) *dtype = EMBER_DTYPE_FP32;
        else if (!strcmp(argv[2], "fp16")) *dtype = EMBER_DTYPE_FP16;
        else if (!strcmp(argv[2], "bf16")) *dtype = EMBER_DTYPE_BF16;
    }
}

/* Exit quietly (77: ctest's skip) where there is no GPU. */
static inline void bench_require_gpu(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
        printf("no CUDA device: nothing to benchmark\n");
        exit(77);
    }
    BENCH_CHECK(cudaSetDevice(0));
}

#endif
