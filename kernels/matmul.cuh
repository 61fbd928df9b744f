/* The projections through cuBLAS: QKV (one GEMM over the concatenated
 * weights), attention output, FFN up and FFN down. CPU twin: matmul_cpu. */
#ifndef EMBER_KERNELS_MATMUL_CUH
#define EMBER_KERNELS_MATMUL_CUH

#include <cublas_v2.h>
#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "ember.h"

#ifdef __cplusplus
extern "C" {
#endif

/* out (T, N) = inp (T, K) @ w^T, w (N, K) as PyTorch stores a Linear's
 * weight; row-major, all in dtype. fp32 accumulation always; fp16 / bf16 on
 * tensor cores; fp32 in true fp32 (no TF32: it is the validation path). The
 * handle carries the stream and the workspace (set once at creation). */
cublasStatus_t matmul_cuda(void *out, const void *inp, const void *w, int32_t T, int32_t K, int32_t N,
                           ember_dtype dtype, cublasHandle_t handle);

/* The same through cuBLASLt, the algorithm chosen once per (K, N, dtype,
 * the pointers' alignment and T rounded up to a power of two, the bucket)
 * and cached: with tune 0 the heuristic's first for the bucket's largest T,
 * used for every T in the bucket (deterministic); with tune 1 the fastest of
 * its first eight, timed on the first call's data (that call waits for the
 * stream; the choice may differ between runs, and so may the last bits of
 * the results). Shapes without an Lt algorithm, and calls it refuses, go to
 * matmul_cuda on `blas`, which must use the same stream and workspace. Not
 * thread-safe: one per backend. */
typedef struct matmul_lt matmul_lt;
cublasStatus_t matmul_lt_create(matmul_lt **out, cublasHandle_t blas, void *workspace, size_t ws_bytes, int tune);
void matmul_lt_destroy(matmul_lt *m);
cublasStatus_t matmul_lt_cuda(matmul_lt *m, void *out, const void *inp, const void *w, int32_t T, int32_t K,
                              int32_t N, ember_dtype dtype, cudaStream_t stream);

#ifdef __cplusplus
}
#endif

#endif
