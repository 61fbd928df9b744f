/* Conversions between the compute dtype and fp32: the packed hidden states
 * gathered back as fp32 for the caller (rows stay in sequence order), and
 * fp32 data brought into the compute dtype (tests, tools). */
#ifndef EMBER_KERNELS_CONVERT_CUH
#define EMBER_KERNELS_CONVERT_CUH

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "ember.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out[i] = (float)inp[i], n elements; inp in dtype. */
cudaError_t convert_to_f32_cuda(float *out, const void *inp, int64_t n, ember_dtype dtype, cudaStream_t stream);
/* out[i] = round-to-nearest-even(inp[i]) in dtype, n elements. */
cudaError_t convert_from_f32_cuda(void *out, const float *inp, int64_t n, ember_dtype dtype, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
