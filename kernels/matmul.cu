/* The projections: out (T, N) = inp (T, K) @ w^T through cuBLAS.
 *
 * cuBLAS is column-major. A row-major (T, N) matrix is a column-major
 * (N, T) one, so out^T (N, T) = w (N, K) . inp^T (K, T): w, stored row-major
 * (N, K), is column-major (K, N) and is used transposed; inp^T is inp as
 * stored. Hence op(A) = T, op(B) = N, m = N, n = T, k = K. */
#include <cublasLt.h>
#include <cuda_runtime_api.h>

#include <new>
#include <vector>

#include "matmul.cuh"

static bool blas_type(ember_dtype dtype, cudaDataType_t *type) {
    switch (dtype) {
    case EMBER_DTYPE_FP32: *type = CUDA_R_32F; return true;
    case EMBER_DTYPE_FP16: *type = CUDA_R_16F; return true;
    case EMBER_DTYPE_BF16: *type = CUDA_R_16BF; return true;
    default: return false;
    }
}

extern "C" cublasStatus_t matmul_cuda(void *out, const void *inp, const void *w, int32_t T, int32_t K, int32_t N,
                                      ember_dtype dtype, cublasHandle_t handle) {
    if (T < 0 || K <= 0 || N <= 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (T == 0) return CUBLAS_STATUS_SUCCESS;
    cudaDataType_t type;
    if (!blas_type(dtype, &type)) return CUBLAS_STATUS_INVALID_VALUE;
    /* CUBLAS_COMPUTE_32F: fp32 accumulation; with 16-bit inputs cuBLAS uses
     * the tensor cores, with fp32 inputs it stays in true fp32 unless the
     * handle's math mode allows TF32 (ember never sets it). */
    const float alpha = 1.0f, beta = 0.0f;
    return cublasGemmEx(handle, CUBLAS_OP_T, CUBLAS_OP_N, N, T, K, &alpha, w, type, K, inp, type, K, &beta, out, type,
                        N, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT);
}

/* ---- cuBLASLt: the algorithm chosen once per shape ------------------------------------ */

namespace {
struct lt_entry {
    int32_t tb, K, N;
    uint32_t align; /* the smallest alignment of the four pointers, in bytes (at most 256) */
    ember_dtype dtype;
    bool ok; /* false: no Lt algorithm for the shape; cublasGemmEx is used */
    cublasLtMatmulAlgo_t algo;
};

/* The three matrix layouts of one product (see the top of the file). */
struct lt_layouts {
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasStatus_t init(cudaDataType_t type, int32_t T, int32_t K, int32_t N) {
        cublasStatus_t s;
        if ((s = cublasLtMatrixLayoutCreate(&a, type, (uint64_t)K, (uint64_t)N, K)) != CUBLAS_STATUS_SUCCESS ||
            (s = cublasLtMatrixLayoutCreate(&b, type, (uint64_t)K, (uint64_t)T, K)) != CUBLAS_STATUS_SUCCESS ||
            (s = cublasLtMatrixLayoutCreate(&c, type, (uint64_t)N, (uint64_t)T, N)) != CUBLAS_STATUS_SUCCESS)
            return s;
        return CUBLAS_STATUS_SUCCESS;
    }
    ~lt_layouts() {
        if (a) cublasLtMatrixLayoutDestroy(a);
        if (b) cublasLtMatrixLayoutDestroy(b);
        if (c) cublasLtMatrixLayoutDestroy(c);
    }
};
} // namespace

struct matmul_lt {
    cublasLtHandle_t h = nullptr;
    cublasLtMatmulDesc_t desc = nullptr;
    cublasHandle_t blas = nullptr; /* the fallback, on the same stream and workspace */
    void *ws = nullptr;
    size_t ws_bytes = 0;
    int tune = 0;
    std::vector<lt_entry> cache;
};

extern "C" cublasStatus_t matmul_lt_create(matmul_lt **out, cublasHandle_t blas, void *workspace, size_t ws_bytes,
                                           int tune) {
    *out = nullptr;
    matmul_lt *m = new (std::nothrow) matmul_lt();
    if (!m) return CUBLAS_STATUS_ALLOC_FAILED;
    m->blas = blas;
    m->ws = workspace;
    m->ws_bytes = ws_bytes;
    m->tune = tune;
    const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
    cublasStatus_t s;
    if ((s = cublasLtCreate(&m->h)) != CUBLAS_STATUS_SUCCESS ||
        (s = cublasLtMatmulDescCreate(&m->desc, CUBLAS_COMPUTE_32F, CUDA_R_32F)) != CUBLAS_STATUS_SUCCESS ||
        (s = cublasLtMatmulDescSetAttribute(m->desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta)) !=
            CUBLAS_STATUS_SUCCESS ||
        (s = cublasLtMatmulDescSetAttribute(m->desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb)) !=
            CUBLAS_STATUS_SUCCESS) {
        matmul_lt_destroy(m);
        return s;
    }
    *out = m;
    return CUBLAS_STATUS_SUCCESS;
}

extern "C" void matmul_lt_destroy(matmul_lt *m) {
    if (!m) return;
    if (m->desc) cublasLtMatmulDescDestroy(m->desc);
    if (m->h) cublasLtDestroy(m->h);
    delete m;
}

/* Largest power of two (at most 256) dividing every pointer's address:
 * cuBLASLt's heuristic assumes 256-byte aligned matrices unless told. */
static uint32_t lt_alignment(const void *a, const void *b, const void *c) {
    const uintptr_t x = (uintptr_t)a | (uintptr_t)b | (uintptr_t)c | 256u;
    return (uint32_t)(x & (~x + 1));
}

/* The algorithm for (T's bucket, K, N, alignment, dtype): the heuristic's
 * first for the bucket's largest T, or, tuning, the fastest of its first
 * eight on this call's data (timed on the stream: the first call of each
 * shape waits). */
static const lt_entry *lt_choose(matmul_lt *m, void *out, const void *inp, const void *w, int32_t T, int32_t K,
                                 int32_t N, ember_dtype dtype, cudaDataType_t type, cudaStream_t stream) {
    int32_t tb = 16;
    while (tb < T) tb *= 2;
    const uint32_t align = lt_alignment(out, inp, w);
    for (const lt_entry &e : m->cache)
        if (e.tb == tb && e.K == K && e.N == N && e.align == align && e.dtype == dtype) return &e;
    lt_entry e{tb, K, N, align, dtype, false, {}};
    lt_layouts q;
    cublasLtMatmulPreference_t pref = nullptr;
    cublasLtMatmulHeuristicResult_t res[8];
    int n = 0;
    const uint64_t ws = m->ws_bytes;
    if (q.init(type, tb, K, N) == CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulPreferenceCreate(&pref) == CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws) ==
            CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align,
                                             sizeof align) == CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align,
                                             sizeof align) == CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align,
                                             sizeof align) == CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align,
                                             sizeof align) == CUBLAS_STATUS_SUCCESS &&
        cublasLtMatmulAlgoGetHeuristic(m->h, m->desc, q.a, q.b, q.c, q.c, pref, m->tune ? 8 : 1, res, &n) ==
            CUBLAS_STATUS_SUCCESS &&
        n > 0) {
        int best = 0;
        lt_layouts l;
        cudaEvent_t ev[2] = {nullptr, nullptr};
        if (m->tune && n > 1 && l.init(type, T, K, N) == CUBLAS_STATUS_SUCCESS &&
            cudaEventCreate(&ev[0]) == cudaSuccess && cudaEventCreate(&ev[1]) == cudaSuccess) {
            const float alpha = 1.0f, beta = 0.0f;
            float best_ms = 1e30f;
            for (int i = 0; i < n; i++) {
                if (cublasLtMatmul(m->h, m->desc, &alpha, w, l.a, inp, l.b, &beta, out, l.c, out, l.c, &res[i].algo,
                                   m->ws, m->ws_bytes, stream) != CUBLAS_STATUS_SUCCESS)
                    continue; /* also the warm-up */
                cudaEventRecord(ev[0], stream);
                for (int r = 0; r < 3; r++)
                    cublasLtMatmul(m->h, m->desc, &alpha, w, l.a, inp, l.b, &beta, out, l.c, out, l.c, &res[i].algo,
                                   m->ws, m->ws_bytes, stream);
                cudaEventRecord(ev[1], stream);
                float ms = 0;
                if (cudaEventSynchronize(ev[1]) == cudaSuccess && cudaEventElapsedTime(&ms, ev[0], ev[1]) ==
                    cudaSuccess && ms < best_ms) {
                    best_ms = ms;
                    best = i;
                }
            }
        }
        for (cudaEvent_t x : ev)
            if (x) cudaEventDestroy(x);
        (void)cudaGetLastError();
        e.algo = res[best].algo;
        e.ok = true;
    }
    if (pref) cublasLtMatmulPreferenceDestroy(pref);
    m->cache.push_back(e);
    return &m->cache.back();
}

extern "C" cublasStatus_t matmul_lt_cuda(matmul_lt *m, void *out, const void *inp, const void *w, int32_t T,
                                         int32_t K, int32_t N, ember_dtype dtype, cudaStream_t stream) {
    if (!m || T < 0 || K <= 0 || N <= 0) return CUBLAS_STATUS_INVALID_VALUE;
    if (T == 0) return CUBLAS_STATUS_SUCCESS;
    cudaDataType_t type;
    if (!blas_type(dtype, &type)) return CUBLAS_STATUS_INVALID_VALUE;
    const lt_entry *e = lt_choose(m, out, inp, w, T, K, N, dtype, type, stream);
    if (e->ok) {
        lt_layouts l;
        cublasStatus_t s = l.init(type, T, K, N);
        if (s != CUBLAS_STATUS_SUCCESS) return s;
        const float alpha = 1.0f, beta = 0.0f;
        s = cublasLtMatmul(m->h, m->desc, &alpha, w, l.a, inp, l.b, &beta, out, l.c, out, l.c, &e->algo, m->ws,
                           m->ws_bytes, stream);
        if (s == CUBLAS_STATUS_SUCCESS) return s;
        /* refused (e.g. the bucket's algorithm does not take this T): cublasGemmEx */
    }
    return matmul_cuda(out, inp, w, T, K, N, dtype, m->blas);
}
