/* Fused attention over packed sequences, timed.
 *
 *   bench_attention [version] [fp32|fp16|bf16]
 *   version 1: the library's choice, attention_cuda (kernels/attention.cu):
 *              mma.sync, S / P / O in registers, cp.async double buffering
 *              for fp16 / bf16 with HS 32 or 64; the scalar kernel otherwise
 *   version 2: attention_wmma_cuda: the first tensor-core kernel (WMMA,
 *              scores and O through shared memory)
 *   version 3: the scalar fp32 kernel (one warp per query row)
 * Reported in TFLOP/s of the two products (4 L^2 HS per head and sequence). */
#include "attention.cuh"
#include "attention_reference.h"
#include "bench_common.cuh"

struct attn_shape {
    const char *name;
    int32_t S, min_len, max_len, NH, HS;
};

int main(int argc, char **argv) {
    bench_require_gpu();
    bench_print_device();
    int only_version, only_dtype;
    bench_args(argc, argv, &only_version, &only_dtype);
    const attn_shape shapes[] = {
        {"bert-base, 128 tokens", 256, 128, 128, 12, 64},
        {"bert-base, 512 tokens", 32, 512, 512, 12, 64},
        {"MiniLM, 8-40 tokens", 2048, 8, 40, 12, 32},
        {"MiniLM, 1-256 tokens", 256, 1, 256, 12, 32},
    };
    printf("%-8s %-5s %-24s %10s %10s\n", "version", "dtype", "shape", "ms", "TFLOP/s");
    for (int di = 0; di < 3; di++) {
        const ember_dtype dt = BENCH_DTYPES[di];
        if (only_dtype >= 0 && only_dtype != (int)dt) continue;
        const float atol = dt == EMBER_DTYPE_FP32 ? 5e-5f : dt == EMBER_DTYPE_FP16 ? 3e-3f : 1.5e-2f;
        const float rtol = dt == EMBER_DTYPE_FP32 ? 1e-4f : dt == EMBER_DTYPE_FP16 ? 3e-3f : 1e-2f;
        for (const attn_shape &sh : shapes) {
            std::vector<int32_t> cu(sh.S + 1, 0);
            int32_t max_len = 0;
            double flops = 0;
            for (int32_t s = 0; s < sh.S; s++) {
                int32_t len = sh.min_len + (int32_t)bench_uniform(0, (float)(sh.max_len - sh.min_len + 1));
                if (len > sh.max_len) len = sh.max_len;
                cu[s + 1] = cu[s] + len;
                max_len = len > max_len ? len : max_len;
                flops += 4.0 * len * len * sh.HS * sh.NH;
            }
            const int32_t T = cu[sh.S], C = sh.NH * sh.HS;
            bench_tensor qkv, bias;
            bench_tensor_random(qkv, (size_t)T * 3 * C, -2, 2, dt);
            bench_tensor_random(bias, (size_t)3 * C, -0.5f, 0.5f, dt);
            /* Each kernel is held to the CPU on the operands it multiplies
             * (attention_kernel_reference, tests/cuda/attention_reference.h). */
            std::vector<float> ref((size_t)T * C), ref_wmma((size_t)T * C), ref_mma((size_t)T * C);
            const bool tc = attention_uses_tensor_cores(dt, sh.HS);
            const attention_ref_kernel kinds[] = {ATTENTION_REF_SCALAR, ATTENTION_REF_WMMA, ATTENTION_REF_MMA};
            std::vector<float> *refs[] = {&ref, &ref_wmma, &ref_mma};
            for (int k = 0; k < (tc ? 3 : 1); k++)
                if (attention_kernel_reference(refs[k]->data(), qkv.host.data(), bias.host.data(), nullptr, cu.data(), sh.S,
                                               max_len, sh.NH, sh.HS, dt, kinds[k]) != 0) {
                    fprintf(stderr, "out of memory\n");
                    return 1;
                }
            int32_t *d_cu = (int32_t *)bench_alloc(cu.size() * 4);
            BENCH_CHECK(cudaMemcpy(d_cu, cu.data(), cu.size() * 4, cudaMemcpyHostToDevice));
            void *out = bench_alloc((size_t)T * C * dtype_size(dt));
            for (int v = 1; v <= 3; v++) {
                if (only_version && only_version != v) continue;
                auto run = [&]() {
                    switch (v) {
                    case 1: return attention_cuda(out, qkv.dev, bias.dev, nullptr, d_cu, sh.S, max_len, sh.NH, sh.HS, dt, 0);
                    case 2:
                        return attention_wmma_cuda(out, qkv.dev, bias.dev, nullptr, d_cu, sh.S, max_len, sh.NH, sh.HS, dt, 0);
                    default:
                        return attention_scalar_cuda(out, qkv.dev, bias.dev, nullptr, d_cu, sh.S, max_len, sh.NH, sh.HS, dt,
                                                     0);
                    }
                };
                BENCH_CHECK(cudaMemset(out, 0xff, (size_t)T * C * dtype_size(dt)));
                BENCH_CHECK(run());
                char what[80];
                snprintf(what, sizeof what, "v%d %s %s", v, ember_dtype_str(dt), sh.name);
                const std::vector<float> &r = !tc || v == 3 ? ref : v == 1 ? ref_mma : ref_wmma;
                if (!bench_validate(what, bench_download(out, (size_t)T * C, dt), r, atol, rtol)) continue;
                const float ms = bench_time_ms(run);
                printf("%-8d %-5s %-24s %10.4f %10.2f%s\n", v, ember_dtype_str(dt), sh.name, ms, flops / ms / 1e9,
                       !tc || v == 3 ? "" : v == 1 ? "  (tensor cores, mma.sync)" : "  (tensor cores, wmma)");
            }
            cudaFree(out);
            cudaFree(d_cu);
            cudaFree(qkv.dev);
            cudaFree(bias.dev);
        }
    }
    return 0;
}
