/* The projections: out (T, N) = inp (T, K) @ w^T through cuBLAS.
 *
 * cuBLAS is column-major. A row-major (T, N) matrix is a column-major
 * (N, T) one, so out^T (N, T) = w (N, K) . inp^T (K, T): w, stored row-major
 * (N, K), is column-major (K, N) and is used transposed; inp^T is inp as
 * stored. Hence op(A) = T, op(B) = N, m = N, n = T, k = K. */
#include <cuda_runtime_api.h>

#include "matmul.cuh"

extern "C" cublasStatus_t matmul_cuda(void *out, const void *inp, const void *w, int32_t T, int32_t K, int32_t N,
                                      ember_dtype dtype, cublasHandle_t handle) {
    if (T < 0 || K <= 0 || N <= 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (T == 0) return CUBLAS_STATUS_SUCCESS;
    cudaDataType_t type;
    switch (dtype) {
    case EMBER_DTYPE_FP32: type = CUDA_R_32F; break;
    case EMBER_DTYPE_FP16: type = CUDA_R_16F; break;
    case EMBER_DTYPE_BF16: type = CUDA_R_16BF; break;
    default: return CUBLAS_STATUS_INVALID_VALUE;
    }
    /* CUBLAS_COMPUTE_32F: fp32 accumulation; with 16-bit inputs cuBLAS uses
     * the tensor cores, with fp32 inputs it stays in true fp32 unless the
     * handle's math mode allows TF32 (ember never sets it). */
    const float alpha = 1.0f, beta = 0.0f;
    return cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, N, T, K, &alpha, w, type, K, inp, type, K, &beta, out, type,
                        N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}
