/* Bias + activation after the FFN up projection. CPU twin: bias_act_cpu. */
#ifndef EMBER_KERNELS_ACTIVATION_CUH
#define EMBER_KERNELS_ACTIVATION_CUH

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "ember.h"
#include "model/model.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out = act(inp + bias): GELU with erf (BERT's "gelu"), GELU's tanh form
 * ("gelu_new", "gelu_pytorch_tanh") or ReLU. out, inp (T, N); bias (N); in
 * dtype, 16-byte aligned; out may alias inp. N must be a multiple of 8. */
cudaError_t bias_act_cuda(void *out, const void *inp, const void *bias, activation act, int32_t T, int32_t N,
                          ember_dtype dtype, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
