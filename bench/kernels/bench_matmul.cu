/* The projections (cuBLAS), timed per shape: which GEMM path and algorithm
 * to use, and how far each shape is from the card's tensor-core rate.
 *
 *   bench_matmul [version] [fp32|fp16|bf16]      (default: fp16 only)
 *   version 1: matmul_cuda (cublasGemmEx, CUBLAS_GEMM_DEFAULT), the default path
 *   version 2: matmul_lt_cuda, tune 0: cuBLASLt's first heuristic algorithm
 *   version 3: matmul_lt_cuda, tune 1: the fastest of its first eight
 *   then each of cuBLASLt's first eight algorithms alone, with its tile,
 *   stages and split-K, so a tuned choice can be read off.
 * Shapes: bert-base (C 768, FF 3072) and all-MiniLM-L6-v2 (C 384, FF 1536) at
 * T = 32768 tokens (the default --max-batch-tokens): QKV, attention output,
 * FFN up, FFN down. Validated on the first 64 rows against the CPU. */
#include <cublasLt.h>

#include "bench_common.cuh"
#include "matmul.cuh"

struct mm_shape {
    const char *name;
    int32_t T, K, N;
};

static cudaError_t blas_err(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS ? cudaSuccess : cudaErrorUnknown; }

static int algo_attr(const cublasLtMatmulAlgo_t &a, cublasLtMatmulAlgoConfigAttributes_t attr) {
    int v = 0;
    size_t n = 0;
    uint32_t u = 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(&a, attr, &u, sizeof u, &n) == CUBLAS_STATUS_SUCCESS) v = (int)u;
    return v;
}

int main(int argc, char **argv) {
    bench_require_gpu();
    bench_print_device();
    int only_version, only_dtype;
    bench_args(argc, argv, &only_version, &only_dtype);
    if (only_dtype < 0) only_dtype = EMBER_DTYPE_FP16;
    const mm_shape shapes[] = {
        {"bert-base QKV", 32768, 768, 2304},     {"bert-base attn out", 32768, 768, 768},
        {"bert-base FFN up", 32768, 768, 3072},  {"bert-base FFN down", 32768, 3072, 768},
        {"MiniLM QKV", 32768, 384, 1152},        {"MiniLM attn out", 32768, 384, 384},
        {"MiniLM FFN up", 32768, 384, 1536},     {"MiniLM FFN down", 32768, 1536, 384},
    };
    const size_t ws_bytes = (size_t)32 << 20;
    void *ws = bench_alloc(ws_bytes);
    cublasHandle_t blas;
    if (cublasCreate(&blas) != CUBLAS_STATUS_SUCCESS || cublasSetWorkspace(blas, ws, ws_bytes) != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "cuBLAS initialisation failed\n");
        return 1;
    }
    matmul_lt *lt0 = nullptr, *lt1 = nullptr;
    if (matmul_lt_create(&lt0, blas, ws, ws_bytes, 0) != CUBLAS_STATUS_SUCCESS ||
        matmul_lt_create(&lt1, blas, ws, ws_bytes, 1) != CUBLAS_STATUS_SUCCESS) {
        fprintf(stderr, "cuBLASLt initialisation failed\n");
        return 1;
    }
    cublasLtHandle_t h;
    cublasLtCreate(&h);
    printf("%-10s %-5s %-22s %10s %10s\n", "version", "dtype", "shape", "ms", "TFLOP/s");
    const ember_dtype dt = (ember_dtype)only_dtype;
    const cudaDataType_t type = dt == EMBER_DTYPE_FP32 ? CUDA_R_32F : dt == EMBER_DTYPE_FP16 ? CUDA_R_16F : CUDA_R_16BF;
    const float atol = dt == EMBER_DTYPE_FP32 ? 1e-3f : 2e-2f, rtol = dt == EMBER_DTYPE_FP32 ? 1e-4f : 1e-2f;
    for (const mm_shape &sh : shapes) {
        bench_tensor inp, w;
        bench_tensor_random(inp, (size_t)sh.T * sh.K, -1, 1, dt);
        bench_tensor_random(w, (size_t)sh.N * sh.K, -0.1f, 0.1f, dt);
        void *out = bench_alloc((size_t)sh.T * sh.N * dtype_size(dt));
        const int32_t VR = 64; /* rows checked */
        std::vector<float> ref((size_t)VR * sh.N);
        matmul_cpu(ref.data(), inp.host.data(), w.host.data(), VR, sh.K, sh.N, cpu_kernels_best());
        const double flops = 2.0 * sh.T * sh.K * sh.N;
        auto check_and_time = [&](const char *version, auto run) {
            BENCH_CHECK(cudaMemset(out, 0xff, (size_t)sh.T * sh.N * dtype_size(dt)));
            BENCH_CHECK(run());
            BENCH_CHECK(cudaDeviceSynchronize());
            char what[80];
            snprintf(what, sizeof what, "%s %s %s", version, ember_dtype_str(dt), sh.name);
            if (!bench_validate(what, bench_download(out, (size_t)VR * sh.N, dt), ref, atol, rtol)) return;
            const float ms = bench_time_ms(run);
            printf("%-10s %-5s %-22s %10.4f %10.1f\n", version, ember_dtype_str(dt), sh.name, ms, flops / ms / 1e9);
        };
        if (!only_version || only_version == 1)
            check_and_time("1 gemmEx", [&]() {
                return blas_err(matmul_cuda(out, inp.dev, w.dev, sh.T, sh.K, sh.N, dt, blas));
            });
        if (!only_version || only_version == 2)
            check_and_time("2 lt", [&]() {
                return blas_err(matmul_lt_cuda(lt0, out, inp.dev, w.dev, sh.T, sh.K, sh.N, dt, 0));
            });
        if (!only_version || only_version == 3)
            check_and_time("3 lt-tune", [&]() {
                return blas_err(matmul_lt_cuda(lt1, out, inp.dev, w.dev, sh.T, sh.K, sh.N, dt, 0));
            });
        if (!only_version) {
            /* each of the heuristic's first eight */
            cublasLtMatmulDesc_t desc;
            cublasLtMatmulDescCreate(&desc, CUBLAS_COMPUTE_32F, CUDA_R_32F);
            const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
            cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta);
            cublasLtMatmulDescSetAttribute(desc, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb);
            cublasLtMatrixLayout_t a, b, c;
            cublasLtMatrixLayoutCreate(&a, type, sh.K, sh.N, sh.K);
            cublasLtMatrixLayoutCreate(&b, type, sh.K, sh.T, sh.K);
            cublasLtMatrixLayoutCreate(&c, type, sh.N, sh.T, sh.N);
            cublasLtMatmulPreference_t pref;
            cublasLtMatmulPreferenceCreate(&pref);
            const uint64_t wsb = ws_bytes;
            cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &wsb, sizeof wsb);
            cublasLtMatmulHeuristicResult_t res[8];
            int n = 0;
            cublasLtMatmulAlgoGetHeuristic(h, desc, a, b, c, c, pref, 8, res, &n);
            for (int i = 0; i < n; i++) {
                char version[32];
                snprintf(version, sizeof version, "  algo %d", i);
                const float alpha = 1.0f, beta = 0.0f;
                const float ms = bench_time_ms([&]() {
                    return blas_err(cublasLtMatmul(h, desc, &alpha, w.dev, a, inp.dev, b, &beta, out, c, out, c,
                                                   &res[i].algo, ws, ws_bytes, 0));
                });
                printf("%-10s %-5s %-22s %10.4f %10.1f   id %d tile %d stages %d splitK %d ws %zu\n", version,
                       ember_dtype_str(dt), sh.name, ms, flops / ms / 1e9, algo_attr(res[i].algo, CUBLASLT_ALGO_CONFIG_ID),
                       algo_attr(res[i].algo, CUBLASLT_ALGO_CONFIG_TILE_ID),
                       algo_attr(res[i].algo, CUBLASLT_ALGO_CONFIG_STAGES_ID),
                       algo_attr(res[i].algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM), res[i].workspaceSize);
            }
            cublasLtMatmulPreferenceDestroy(pref);
            cublasLtMatrixLayoutDestroy(a);
            cublasLtMatrixLayoutDestroy(b);
            cublasLtMatrixLayoutDestroy(c);
            cublasLtMatmulDescDestroy(desc);
        }
        cudaFree(out);
        cudaFree(inp.dev);
        cudaFree(w.dev);
    }
    matmul_lt_destroy(lt0);
    matmul_lt_destroy(lt1);
    cublasLtDestroy(h);
    cublasDestroy(blas);
    return 0;
}
