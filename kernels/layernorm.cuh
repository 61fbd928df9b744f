/* Bias + residual + LayerNorm, after the attention output projection and
 * after the FFN down projection. CPU twin: bias_residual_layernorm_cpu. */
#ifndef EMBER_KERNELS_LAYERNORM_CUH
#define EMBER_KERNELS_LAYERNORM_CUH

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "ember.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Widest row the LayerNorm kernels take (one warp holds a row in registers). */
#define LAYERNORM_MAX_C 2048

/* out = LayerNorm(inp + bias + residual) * ln_w + ln_b, row by row.
 * out, inp, residual (T, C); bias, ln_w, ln_b (C); all in dtype and 16-byte
 * aligned. out may alias residual (the residual stream is updated in
 * place); it must not alias inp. C must be a multiple of 8, at most LAYERNORM_MAX_C. */
cudaError_t bias_residual_layernorm_cuda(void *out, const void *inp, const void *bias, const void *residual,
                                         const void *ln_w, const void *ln_b, float eps, int32_t T, int32_t C,
                                         ember_dtype dtype, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#ifdef __CUDACC__
#include "common.cuh"

/* One warp normalises one row held in registers: lane l holds the 16-byte
 * chunks starting at columns (l + 32 k) * N, k < NCHUNK; chunks at or past C
 * are ignored. Two passes over the registers (mean, then the variance of
 * x - mean), as the CPU reference does, so no cancellation. */
template <typename D, int NCHUNK>
__device__ __forceinline__ void layernorm_warp_store(D *out_row, float (&x)[NCHUNK][vec16<D>::N], const D *ln_w,
                                                     const D *ln_b, float eps, int C, int lane) {
    constexpr int N = vec16<D>::N;
    float sum = 0.0f;
#pragma unroll
    for (int k = 0; k < NCHUNK; k++) {
        if ((lane + WARP_SIZE * k) * N < C) {
#pragma unroll
            for (int i = 0; i < N; i++) sum += x[k][i];
        }
    }
    const float mean = warp_sum(sum) / (float)C;
    float sq = 0.0f;
#pragma unroll
    for (int k = 0; k < NCHUNK; k++) {
        if ((lane + WARP_SIZE * k) * N < C) {
#pragma unroll
            for (int i = 0; i < N; i++) {
                float d = x[k][i] - mean;
                sq += d * d;
            }
        }
    }
    const float rstd = rsqrtf(warp_sum(sq) / (float)C + eps);
#pragma unroll
    for (int k = 0; k < NCHUNK; k++) {
        const int c = (lane + WARP_SIZE * k) * N;
        if (c < C) {
            float w[N], b[N], y[N];
            load16_f32(w, ln_w + c);
            load16_f32(b, ln_b + c);
#pragma unroll
            for (int i = 0; i < N; i++) y[i] = (x[k][i] - mean) * rstd * w[i] + b[i];
            store16_f32(out_row + c, y);
        }
    }
}

/* Launch kernel<D, NCHUNK> with the fewest chunks per lane that cover C.
 * Chunk counts that no C <= LAYERNORM_MAX_C needs are not instantiated. */
#define LAYERNORM_NEEDED(D, NCHUNK) (((NCHUNK)-1) * WARP_SIZE * vec16<D>::N < LAYERNORM_MAX_C)
#define LAYERNORM_TRY(D, NCHUNK, need, LAUNCH)                                                                        \
    if constexpr (LAYERNORM_NEEDED(D, NCHUNK)) {                                                                      \
        if ((need) <= (NCHUNK)) {                                                                                     \
            LAUNCH(NCHUNK);                                                                                           \
            return cudaGetLastError();                                                                                \
        }                                                                                                             \
    }
#define LAYERNORM_DISPATCH_CHUNKS(D, C, LAUNCH)                                                                       \
    do {                                                                                                              \
        const int need_ = (int)(((C) + WARP_SIZE * vec16<D>::N - 1) / (WARP_SIZE * vec16<D>::N));                    \
        LAYERNORM_TRY(D, 1, need_, LAUNCH)                                                                            \
        LAYERNORM_TRY(D, 2, need_, LAUNCH)                                                                            \
        LAYERNORM_TRY(D, 3, need_, LAUNCH)                                                                            \
        LAYERNORM_TRY(D, 4, need_, LAUNCH)                                                                            \
        LAYERNORM_TRY(D, 6, need_, LAUNCH)                                                                            \
        LAYERNORM_TRY(D, 8, need_, LAUNCH)                                                                            \
        LAYERNORM_TRY(D, 16, need_, LAUNCH)                                                                           \
        return cudaErrorInvalidValue;                                                                                 \
    } while (0)
#endif

#endif
