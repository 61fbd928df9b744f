/* Pooling of each sequence's hidden states into one vector, then L2
 * normalisation. CPU twin: pool_cpu. */
#ifndef EMBER_KERNELS_POOL_CUH
#define EMBER_KERNELS_POOL_CUH

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "ember.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out (S, C) fp32: cls / mean / max / mean_sqrt_len over the rows of each
 * sequence of hidden (T, C, in dtype), then x / max(|x|, 1e-12) when
 * normalize is set. cu_seqlens (S + 1) on the device; every sequence has at
 * least one token. C at most 8192. */
cudaError_t pool_cuda(float *out, const void *hidden, const int32_t *cu_seqlens, int32_t S, int32_t C,
                      ember_pooling pooling, int normalize, ember_dtype dtype, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
