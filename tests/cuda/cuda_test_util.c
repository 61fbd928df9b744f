#include "cuda_test_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "backend/cuda_layout.h"

void require_cuda(void) {
    int32_t n = cuda_device_count();
    if (n <= 0) {
        /* also on stderr, where ctest's SKIP_REGULAR_EXPRESSION sees it */
        fprintf(stderr, "no CUDA device: skipping %s\n", "the cuda-labelled tests");
        cr_skip_test("no CUDA device: cuda_device_count() = %d; the cuda-labelled tests need an NVIDIA GPU "
                     "(tools/device-check.sh runs them on one)",
                     n);
    }
    CHECK_CUDA(cudaSetDevice(0));
}

const char *test_path(const char *env, const char *fallback) {
    const char *v = getenv(env);
    return v && *v ? v : fallback;
}

const char *require_path(const char *env, const char *fallback, const char *hint) {
    const char *p = test_path(env, fallback);
    require_dir(p, hint);
    return p;
}

static uint64_t rng_state;
static int rng_ready;

uint64_t rng_next(void) {
    if (!rng_ready) {
        const char *s = getenv("EMBER_TEST_SEED");
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rng_state = s && *s ? strtoull(s, NULL, 0) : (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 20);
        rng_ready = 1;
        cr_log_info("random seed %llu (replay with EMBER_TEST_SEED=%llu)", (unsigned long long)rng_state,
                    (unsigned long long)rng_state);
    }
    /* splitmix64 */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

float rng_uniform(float lo, float hi) { return lo + (hi - lo) * (float)((rng_next() >> 40) * (1.0 / 16777216.0)); }

int32_t rng_int(int32_t lo, int32_t hi) { return lo + (int32_t)(rng_next() % (uint64_t)(hi - lo + 1)); }

float *random_values(size_t n, float lo, float hi, ember_dtype dtype) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    cr_assert(x);
    for (size_t i = 0; i < n; i++) x[i] = dtype_round(rng_uniform(lo, hi), dtype);
    return x;
}

void *dev_alloc(size_t bytes) {
    void *d = NULL;
    CHECK_CUDA(cudaMalloc(&d, bytes ? bytes : 1));
    return d;
}

void *dev_from_f32(const float *x, size_t n, ember_dtype dtype) {
    const size_t bytes = n * dtype_size(dtype);
    void *h = malloc(bytes ? bytes : 1);
    cr_assert(h);
    f32_to_dtype(h, x, n, dtype);
    void *d = dev_alloc(bytes);
    CHECK_CUDA(cudaMemcpy(d, h, bytes, cudaMemcpyHostToDevice));
    free(h);
    return d;
}

void dev_poison(void *d, size_t bytes) { CHECK_CUDA(cudaMemset(d, 0xff, bytes)); }

float *host_f32_from_dev(const void *d, size_t n, ember_dtype dtype) {
    const size_t bytes = n * dtype_size(dtype);
    void *h = malloc(bytes ? bytes : 1);
    float *out = malloc((n ? n : 1) * sizeof *out);
    cr_assert(h && out);
    CHECK_CUDA(cudaDeviceSynchronize());
    CHECK_CUDA(cudaMemcpy(h, d, bytes, cudaMemcpyDeviceToHost));
    dtype_to_f32(out, h, n, dtype);
    free(h);
    return out;
}

size_t count_mismatches(const char *what, const float *got, const float *ref, size_t n, float atol, float rtol) {
    size_t bad = 0, worst = 0;
    double worst_excess = -1;
    for (size_t i = 0; i < n; i++) {
        const float tol = atol + rtol * fabsf(ref[i]);
        const float d = fabsf(got[i] - ref[i]);
        const int fail = !isfinite(got[i]) || d > tol;
        if (fail) {
            if (bad < 5)
                cr_log_error("%s: [%zu] got %.7g, expected %.7g (|diff| %.3g > tol %.3g)", what, i, got[i], ref[i], d,
                             tol);
            bad++;
        }
        const double excess = isfinite(got[i]) ? (double)d / tol : INFINITY;
        if (excess > worst_excess) {
            worst_excess = excess;
            worst = i;
        }
    }
    if (bad)
        cr_log_error("%s: %zu of %zu outside tolerance (atol %.3g, rtol %.3g); worst [%zu] got %.7g expected %.7g",
                     what, bad, n, atol, rtol, worst, got[worst], ref[worst]);
    return bad;
}

int32_t *cu_from_lengths(const int32_t *lens, int32_t S, int32_t *T, int32_t *max_len) {
    int32_t *cu = malloc(((size_t)S + 1) * sizeof *cu);
    cr_assert(cu);
    cu[0] = 0;
    int32_t m = 0;
    for (int32_t s = 0; s < S; s++) {
        cu[s + 1] = cu[s] + lens[s];
        if (lens[s] > m) m = lens[s];
    }
    *T = cu[S];
    *max_len = m;
    return cu;
}
