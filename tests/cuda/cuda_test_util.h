/* Helpers for the CUDA backend's tests: skipping without a GPU, device
 * buffers in any dtype, fresh random inputs, tolerant comparison. */
#ifndef EMBER_CUDA_TEST_UTIL_H
#define EMBER_CUDA_TEST_UTIL_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "ember.h"
#include "test_util.h"

/* Skip the current test with "no CUDA device: ..." unless a GPU is there;
 * selects device 0. */
void require_cuda(void);

/* getenv(env) when set and non-empty, else fallback (a compiled-in path). */
const char *test_path(const char *env, const char *fallback);
/* require_dir() on test_path(env, fallback); returns the path. */
const char *require_path(const char *env, const char *fallback, const char *hint);

#define CHECK_CUDA(call)                                                                                              \
    do {                                                                                                              \
        cudaError_t e_ = (call);                                                                                      \
        cr_assert_eq(e_, cudaSuccess, "%s: %s (%s)", #call, cudaGetErrorString(e_), cudaGetErrorName(e_));           \
    } while (0)

/* A generator seeded once per process from the clock (or EMBER_TEST_SEED),
 * logged so that a failure can be replayed. */
uint64_t rng_next(void);
float rng_uniform(float lo, float hi);
int32_t rng_int(int32_t lo, int32_t hi); /* [lo, hi] */
/* n values uniform in [lo, hi), then rounded to what dtype holds (so the CPU
 * reference sees exactly what the GPU sees). */
float *random_values(size_t n, float lo, float hi, ember_dtype dtype);

/* Device copy of n fp32 values in dtype (cudaFree it). */
void *dev_from_f32(const float *x, size_t n, ember_dtype dtype);
void *dev_alloc(size_t bytes);
/* Fill with 0xff bytes: NaN in fp32, fp16 and bf16 alike, so any element a
 * kernel fails to write is caught. */
void dev_poison(void *d, size_t bytes);
/* n values of dtype from the device, as fp32 (malloc'd). */
float *host_f32_from_dev(const void *d, size_t n, ember_dtype dtype);

/* |got - ref| <= atol + rtol * |ref| everywhere, and no NaN/Inf in got.
 * Logs the worst and the first few mismatches; returns the mismatch count. */
size_t count_mismatches(const char *what, const float *got, const float *ref, size_t n, float atol, float rtol);

/* Sequence lengths -> cu_seqlens (S + 1, malloc'd); *T the total, *max_len the longest. */
int32_t *cu_from_lengths(const int32_t *lens, int32_t S, int32_t *T, int32_t *max_len);

#endif
