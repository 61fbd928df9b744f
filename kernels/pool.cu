/* Pooling + L2 normalisation: one block per sequence, threads across the
 * hidden dimension, so each of the sequence's rows is read once, coalesced.
 *
 * Shapes: S sequences, T tokens, C hidden size. */
#include <math.h>

#include "common.cuh"
#include "pool.cuh"

#define POOL_THREADS 256
#define POOL_MAX_C 8192 /* the pooled row sits in shared memory: 32 KiB */

template <typename D>
__global__ void __launch_bounds__(POOL_THREADS)
    pool_kernel(float *__restrict__ out, const D *__restrict__ hidden, const int32_t *__restrict__ cu_seqlens,
                int32_t C, int pooling, int normalize) {
    extern __shared__ float pooled[]; /* (C) */
    const int64_t s = blockIdx.x;
    const int64_t t0 = cu_seqlens[s];
    const int32_t L = cu_seqlens[s + 1] - cu_seqlens[s];
    const D *h = hidden + t0 * C;
    float sq = 0.0f;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float v;
        if (pooling == EMBER_POOLING_MAX) {
            v = to_f32(h[c]);
            for (int32_t t = 1; t < L; t++) {
                float x = to_f32(h[(int64_t)t * C + c]);
                if (x > v) v = x; /* the CPU's comparison, not fmaxf: same NaN behaviour */
            }
        } else if (pooling == EMBER_POOLING_MEAN || pooling == EMBER_POOLING_MEAN_SQRT_LEN) {
            float acc = 0.0f;
            for (int32_t t = 0; t < L; t++) acc += to_f32(h[(int64_t)t * C + c]);
            v = pooling == EMBER_POOLING_MEAN ? acc / (float)L : acc / sqrtf((float)L);
        } else { /* CLS */
            v = to_f32(h[c]);
        }
        pooled[c] = v;
        sq += v * v;
    }
    float inv = 1.0f;
    if (normalize) {
        const float norm = sqrtf(block_sum(sq)); /* every thread calls it: normalize is uniform */
        inv = 1.0f / fmaxf(norm, 1e-12f);
    }
    /* Each thread reads back only the columns it wrote: no barrier needed. */
    for (int c = threadIdx.x; c < C; c += blockDim.x) out[s * C + c] = pooled[c] * inv;
}

extern "C" cudaError_t pool_cuda(float *out, const void *hidden, const int32_t *cu_seqlens, int32_t S, int32_t C,
                                 ember_pooling pooling, int normalize, ember_dtype dtype, cudaStream_t stream) {
    if (S < 0 || C <= 0 || C > POOL_MAX_C) return cudaErrorInvalidValue;
    if (pooling != EMBER_POOLING_CLS && pooling != EMBER_POOLING_MEAN && pooling != EMBER_POOLING_MAX &&
        pooling != EMBER_POOLING_MEAN_SQRT_LEN)
        return cudaErrorInvalidValue;
    if (S == 0) return cudaSuccess;
    const size_t smem = (size_t)C * sizeof(float);
    DISPATCH_DTYPE(dtype, D, pool_kernel<D><<<(unsigned int)S, POOL_THREADS, smem, stream>>>(
                                 out, (const D *)hidden, cu_seqlens, C, (int)pooling, normalize ? 1 : 0));
    return cudaGetLastError();
}
