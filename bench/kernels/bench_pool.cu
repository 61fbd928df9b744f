/* Pooling + L2 normalisation, timed.
 *
 *   bench_pool [version] [fp32|fp16|bf16]
 *   version 1: the library kernel: one block per sequence (kernels/pool.cu)
 * Memory-bound: GB/s of the hidden states read. */
#include "bench_common.cuh"
#include "pool.cuh"

int main(int argc, char **argv) {
    bench_require_gpu();
    bench_print_device();
    int only_version, only_dtype;
    bench_args(argc, argv, &only_version, &only_dtype);
    /* (S, length, C): many short sentences, bert-base batches, few long ones */
    const int32_t shapes[][3] = {{2048, 16, 384}, {256, 128, 768}, {16, 512, 768}};
    printf("%-8s %-5s %-22s %10s %10s\n", "version", "dtype", "S x len x C", "ms", "GB/s");
    for (int di = 0; di < 3; di++) {
        const ember_dtype dt = BENCH_DTYPES[di];
        if (only_dtype >= 0 && only_dtype != (int)dt) continue;
        for (const auto &shape : shapes) {
            if (only_version && only_version != 1) continue;
            const int32_t S = shape[0], len = shape[1], C = shape[2], T = S * len;
            std::vector<int32_t> cu(S + 1);
            for (int32_t s = 0; s <= S; s++) cu[s] = s * len;
            bench_tensor hidden;
            bench_tensor_random(hidden, (size_t)T * C, -3, 3, dt);
            int32_t *d_cu = (int32_t *)bench_alloc(cu.size() * 4);
            BENCH_CHECK(cudaMemcpy(d_cu, cu.data(), cu.size() * 4, cudaMemcpyHostToDevice));
            float *out = (float *)bench_alloc((size_t)S * C * 4);
            std::vector<float> ref((size_t)S * C);
            pool_cpu(ref.data(), hidden.host.data(), cu.data(), S, C, EMBER_POOLING_MEAN, 1, cpu_kernels_best());
            char shape_name[40];
            snprintf(shape_name, sizeof shape_name, "%d x %d x %d", S, len, C);
            auto run = [&]() { return pool_cuda(out, hidden.dev, d_cu, S, C, EMBER_POOLING_MEAN, 1, dt, 0); };
            BENCH_CHECK(cudaMemset(out, 0xff, (size_t)S * C * 4));
            BENCH_CHECK(run());
            char what[64];
            snprintf(what, sizeof what, "v1 %s %s", ember_dtype_str(dt), shape_name);
            if (bench_validate(what, bench_download(out, (size_t)S * C, EMBER_DTYPE_FP32), ref, 1e-5f, 1e-4f)) {
                const float ms = bench_time_ms(run);
                printf("%-8d %-5s %-22s %10.4f %10.1f\n", 1, ember_dtype_str(dt), shape_name, ms,
                       (double)T * C * dtype_size(dt) / ms / 1e6);
            }
            cudaFree(out);
            cudaFree(d_cu);
            cudaFree(hidden.dev);
        }
    }
    return 0;
}
