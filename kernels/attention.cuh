/* Fused multi-head self-attention over a packed batch (sequences
 * concatenated, cu_seqlens offsets, no padding). CPU twin: attention_cpu. */
#ifndef EMBER_KERNELS_ATTENTION_CUH
#define EMBER_KERNELS_ATTENTION_CUH

#include <cuda_runtime_api.h>
#include <stdint.h>

#include "ember.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Largest head size any attention kernel handles. */
#define ATTENTION_MAX_HS 128

/*
 * out (T, C) = softmax(q k^T / sqrt(HS)) v for each head of each sequence,
 * where qkv (T, 3C) holds [q | k | v] without their bias and bias (3C) is
 * applied by the kernel; C = NH * HS. Scores live in registers and shared
 * memory only (flash-attention style: online softmax in fp32). fp16 / bf16
 * with HS 32 or 64 run on tensor cores (mma.sync; q + b_q rounded to the
 * dtype, b_k dropped as the softmax cancels it, b_v added to the output);
 * other head sizes (HS % 8 == 0, at most ATTENTION_MAX_HS) and fp32 on a
 * scalar fp32 kernel that adds every bias on load. cu_seqlens (S + 1) on
 * the device; max_seqlen at least the longest sequence; qkv, bias, out
 * 16-byte aligned. rel_bias: NULL, or MPNet's relative position bias
 * (32, NH) fp32 on the device (the first 32 rows of
 * relative_attention_bias): the score of query i for key j of a sequence
 * gets rel_bias[rel_bucket(j - i)][h] after the 1 / sqrt(HS) scaling, the
 * bucket computed in the kernel (kernels/rel_bucket.cuh), as attention_cpu.
 */
cudaError_t attention_cuda(void *out, const void *qkv, const void *bias, const float *rel_bias,
                           const int32_t *cu_seqlens, int32_t S, int32_t max_seqlen, int32_t NH, int32_t HS,
                           ember_dtype dtype, cudaStream_t stream);

/* The same on the first tensor-core kernel (WMMA; q, k, v + bias rounded to
 * the dtype on load), for comparison and as a fallback; the scalar kernel
 * where attention_cuda uses it. */
cudaError_t attention_wmma_cuda(void *out, const void *qkv, const void *bias, const float *rel_bias,
                                const int32_t *cu_seqlens, int32_t S, int32_t max_seqlen, int32_t NH, int32_t HS,
                                ember_dtype dtype, cudaStream_t stream);

/* The same, always on the scalar kernel (tests and bench/kernels compare
 * the paths). */
cudaError_t attention_scalar_cuda(void *out, const void *qkv, const void *bias, const float *rel_bias,
                                  const int32_t *cu_seqlens, int32_t S, int32_t max_seqlen, int32_t NH, int32_t HS,
                                  ember_dtype dtype, cudaStream_t stream);

/* 1 when attention_cuda (and attention_wmma_cuda) run (dtype, HS) on tensor cores. */
int attention_uses_tensor_cores(ember_dtype dtype, int32_t HS);

#ifdef __cplusplus
}
#endif

#endif
