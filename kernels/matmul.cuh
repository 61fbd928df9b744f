/* The projections through cuBLAS: QKV (one GEMM over the concatenated
 * weights), attention output, FFN up and FFN down. CPU twin: matmul_cpu. */
#ifndef EMBER_KERNELS_MATMUL_CUH
#define EMBER_KERNELS_MATMUL_CUH

#include <cublas_v2.h>
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

#ifdef __cplusplus
}
#endif

#endif
