/* bias + GELU (erf) after the FFN up projection, timed.
 *
 *   bench_activation [version] [fp32|fp16|bf16]
 *   version 1: the library kernel: 16-byte vectors, grid-stride (kernels/activation.cu)
 *   version 2: one element per thread, scalar loads (for comparison)
 * Memory-bound: GB/s of the (T, N) input read and output written. */
#include "activation.cuh"
#include "bench_common.cuh"
#include "common.cuh"

template <typename D> __global__ void bias_gelu_scalar(D *out, const D *inp, const D *bias, int64_t n, int32_t N) {
    const int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    const float v = to_f32(inp[i]) + to_f32(bias[i % N]);
    out[i] = from_f32<D>(0.5f * v * (1.0f + erff(v * 0.70710678118654752f)));
}

static cudaError_t activation_v2(void *out, const void *inp, const void *bias, int32_t T, int32_t N, ember_dtype dt) {
    const int64_t n = (int64_t)T * N;
    DISPATCH_DTYPE(dt, D,
                   bias_gelu_scalar<D><<<(unsigned)((n + 255) / 256), 256>>>((D *)out, (const D *)inp,
                                                                              (const D *)bias, n, N));
    return cudaGetLastError();
}

int main(int argc, char **argv) {
    bench_require_gpu();
    bench_print_device();
    int only_version, only_dtype;
    bench_args(argc, argv, &only_version, &only_dtype);
    const int32_t shapes[][2] = {{32768, 1536}, {32768, 3072}, {4096, 4096}};
    printf("%-8s %-5s %-14s %10s %10s\n", "version", "dtype", "T x N", "ms", "GB/s");
    for (int di = 0; di < 3; di++) {
        const ember_dtype dt = BENCH_DTYPES[di];
        if (only_dtype >= 0 && only_dtype != (int)dt) continue;
        const float tol = dt == EMBER_DTYPE_FP32 ? 2e-5f : dt == EMBER_DTYPE_FP16 ? 2e-3f : 8e-3f;
        const size_t es = dtype_size(dt);
        for (const auto &shape : shapes) {
            const int32_t T = shape[0], N = shape[1];
            const size_t n = (size_t)T * N;
            bench_tensor inp, bias;
            bench_tensor_random(inp, n, -4, 4, dt);
            bench_tensor_random(bias, N, -1, 1, dt);
            std::vector<float> ref(n);
            bias_act_cpu(ref.data(), inp.host.data(), bias.host.data(), ACT_GELU_ERF, T, N, cpu_kernels_best());
            void *out = bench_alloc(n * es);
            char shape_name[32];
            snprintf(shape_name, sizeof shape_name, "%d x %d", T, N);
            for (int v = 1; v <= 2; v++) {
                if (only_version && only_version != v) continue;
                auto run = [&]() {
                    return v == 1 ? bias_act_cuda(out, inp.dev, bias.dev, ACT_GELU_ERF, T, N, dt, 0)
                                  : activation_v2(out, inp.dev, bias.dev, T, N, dt);
                };
                BENCH_CHECK(cudaMemset(out, 0xff, n * es));
                BENCH_CHECK(run());
                char what[64];
                snprintf(what, sizeof what, "v%d %s %s", v, ember_dtype_str(dt), shape_name);
                if (!bench_validate(what, bench_download(out, n, dt), ref, tol, tol)) continue;
                const float ms = bench_time_ms(run);
                printf("%-8d %-5s %-14s %10.4f %10.1f\n", v, ember_dtype_str(dt), shape_name, ms, 2.0 * n * es / ms / 1e6);
            }
            cudaFree(out);
            cudaFree(inp.dev);
            cudaFree(bias.dev);
        }
    }
    return 0;
}
