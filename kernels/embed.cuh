/* Embedding gather + position + token type + LayerNorm: the first op of the
 * forward pass. CPU twin: embed_layernorm_cpu (src/backend/cpu_ops.h). */
#ifndef EMBER_KERNELS_EMBED_CUH
#define EMBER_KERNELS_EMBED_CUH

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "ember.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out = LayerNorm(word[ids] + pos_emb[pos] + type_emb[type_ids]) * ln_w + ln_b.
 * out (T, C), word (V, C), pos_emb (P, C), type_emb (TV, C), ln_w/ln_b (C): all
 * in dtype, 16-byte aligned; ids/type_ids/pos (T) int32 on the device, already
 * checked to be in range. C must be a multiple of 8 and at most
 * LAYERNORM_MAX_C. */
cudaError_t embed_layernorm_cuda(void *out, const int32_t *ids, const int32_t *type_ids, const int32_t *pos,
                                 const void *word, const void *pos_emb, const void *type_emb, const void *ln_w,
                                 const void *ln_b, float eps, int32_t T, int32_t C, ember_dtype dtype,
                                 cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
