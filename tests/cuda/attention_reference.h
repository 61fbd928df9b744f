/* The CPU reference of each CUDA attention kernel's arithmetic, shared by
 * the kernel tests, the warp emulator's test and bench/kernels. */
#ifndef EMBER_TESTS_ATTENTION_REFERENCE_H
#define EMBER_TESTS_ATTENTION_REFERENCE_H

#include <stdint.h>

#include "ember.h"

#ifdef __cplusplus
extern "C" {
#endif

/* The CPU reference for each CUDA attention kernel, on the operands it
 * really multiplies (a score's rounding, |s| * 2^-11 in fp16, 2^-8 in bf16,
 * would otherwise move the softmax by more than any useful tolerance):
 * - SCALAR: qkv and bias as they are (the scalar kernel adds the bias in fp32);
 * - WMMA: q, k, v with their bias added, rounded to the dtype, no bias;
 * - MMA: q + b_q rounded to the dtype, k and v as stored, no bias, and b_v
 *   added to the output (the softmax cancels b_k; the probabilities sum to 1).
 * Arguments as attention_cpu's, fp32 values already representable in dtype;
 * rel_bias NULL or MPNet's position bias table (32, NH), fp32 in every kernel.
 * 0, or -1 when out of memory. */
typedef enum { ATTENTION_REF_SCALAR, ATTENTION_REF_WMMA, ATTENTION_REF_MMA } attention_ref_kernel;
int attention_kernel_reference(float *out, const float *qkv, const float *bias, const float *rel_bias,
                               const int32_t *cu_seqlens, int32_t S, int32_t max_len, int32_t NH, int32_t HS,
                               ember_dtype dtype, attention_ref_kernel kernel);

#ifdef __cplusplus
}
#endif

#endif
