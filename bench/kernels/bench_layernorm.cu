/* bias + residual + LayerNorm (and the embedding LayerNorm), timed.
 *
 *   bench_layernorm [version] [fp32|fp16|bf16]
 *   version 1: the library kernel: one warp per row, the row in registers,
 *              16-byte loads (kernels/layernorm.cu)
 *   version 2: one 256-thread block per row, the row in shared memory,
 *              scalar loads (the textbook version, for comparison)
 *   version 3: the embedding gather + LayerNorm (kernels/embed.cu)
 * Memory-bound: reported in GB/s (inputs read once, output written once). */
#include "bench_common.cuh"
#include "common.cuh"
#include "embed.cuh"
#include "layernorm.cuh"

/* ---- version 2 --------------------------------------------------------------------- */

template <typename D>
__global__ void __launch_bounds__(256) layernorm_block_per_row(D *out, const D *inp, const D *bias, const D *residual,
                                                               const D *ln_w, const D *ln_b, float eps, int C) {
    extern __shared__ float row[];
    const int64_t t = blockIdx.x;
    float sum = 0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) {
        float x = to_f32(inp[t * C + c]) + to_f32(bias[c]) + to_f32(residual[t * C + c]);
        row[c] = x;
        sum += x;
    }
    const float mean = block_sum(sum) / C;
    float sq = 0;
    for (int c = threadIdx.x; c < C; c += blockDim.x) sq += (row[c] - mean) * (row[c] - mean);
    const float rstd = rsqrtf(block_sum(sq) / C + eps);
    for (int c = threadIdx.x; c < C; c += blockDim.x)
        out[t * C + c] = from_f32<D>((row[c] - mean) * rstd * to_f32(ln_w[c]) + to_f32(ln_b[c]));
}

static cudaError_t layernorm_v2(void *out, const void *inp, const void *bias, const void *res, const void *w,
                                const void *b, float eps, int32_t T, int32_t C, ember_dtype dt) {
    DISPATCH_DTYPE(dt, D,
                   layernorm_block_per_row<D><<<T, 256, C * sizeof(float)>>>((D *)out, (const D *)inp, (const D *)bias,
                                                                             (const D *)res, (const D *)w,
                                                                             (const D *)b, eps, C));
    return cudaGetLastError();
}

int main(int argc, char **argv) {
    bench_require_gpu();
    bench_print_device();
    int only_version, only_dtype;
    bench_args(argc, argv, &only_version, &only_dtype);
    const int32_t shapes[][2] = {{32768, 384}, {32768, 768}, {16384, 1024}};
    const float eps = 1e-12f;
    printf("%-8s %-5s %-14s %10s %10s\n", "version", "dtype", "T x C", "ms", "GB/s");
    for (int di = 0; di < 3; di++) {
        const ember_dtype dt = BENCH_DTYPES[di];
        if (only_dtype >= 0 && only_dtype != (int)dt) continue;
        const float tol = dt == EMBER_DTYPE_FP32 ? 2e-5f : dt == EMBER_DTYPE_FP16 ? 2e-3f : 8e-3f;
        const size_t es = dtype_size(dt);
        for (const auto &shape : shapes) {
            const int32_t T = shape[0], C = shape[1];
            const size_t n = (size_t)T * C;
            bench_tensor inp, res, bias, w, b;
            bench_tensor_random(inp, n, -2, 2, dt);
            bench_tensor_random(res, n, -2, 2, dt);
            bench_tensor_random(bias, C, -0.5f, 0.5f, dt);
            bench_tensor_random(w, C, 0.5f, 1.5f, dt);
            bench_tensor_random(b, C, -0.5f, 0.5f, dt);
            std::vector<float> ref(n);
            bias_residual_layernorm_cpu(ref.data(), inp.host.data(), bias.host.data(), res.host.data(), w.host.data(),
                                        b.host.data(), eps, T, C, cpu_kernels_best());
            void *out = bench_alloc(n * es);
            char shape_name[32];
            snprintf(shape_name, sizeof shape_name, "%d x %d", T, C);
            for (int v = 1; v <= 2; v++) {
                if (only_version && only_version != v) continue;
                auto run = [&]() {
                    return v == 1 ? bias_residual_layernorm_cuda(out, inp.dev, bias.dev, res.dev, w.dev, b.dev, eps, T,
                                                                 C, dt, 0)
                                  : layernorm_v2(out, inp.dev, bias.dev, res.dev, w.dev, b.dev, eps, T, C, dt);
                };
                BENCH_CHECK(cudaMemset(out, 0xff, n * es));
                BENCH_CHECK(run());
                char what[64];
                snprintf(what, sizeof what, "v%d %s %s", v, ember_dtype_str(dt), shape_name);
                if (!bench_validate(what, bench_download(out, n, dt), ref, tol, tol)) continue;
                const float ms = bench_time_ms(run);
                printf("%-8d %-5s %-14s %10.4f %10.1f\n", v, ember_dtype_str(dt), shape_name, ms, 3.0 * n * es / ms / 1e6);
            }
            if (!only_version || only_version == 3) {
                /* the embedding LayerNorm on the same T x C: gathers from a BERT-sized vocabulary */
                const int32_t V = 30522, P = 512;
                bench_tensor word, pos_emb, type_emb;
                bench_tensor_random(word, (size_t)V * C, -1, 1, dt);
                bench_tensor_random(pos_emb, (size_t)P * C, -1, 1, dt);
                bench_tensor_random(type_emb, (size_t)2 * C, -1, 1, dt);
                std::vector<int32_t> ids(T), types(T), pos(T);
                for (int32_t t = 0; t < T; t++) {
                    ids[t] = (int32_t)bench_uniform(0, (float)V - 1);
                    types[t] = t % 7 == 0;
                    pos[t] = t % 128;
                }
                int32_t *d_ints = (int32_t *)bench_alloc(3 * (size_t)T * 4);
                BENCH_CHECK(cudaMemcpy(d_ints, ids.data(), T * 4, cudaMemcpyHostToDevice));
                BENCH_CHECK(cudaMemcpy(d_ints + T, types.data(), T * 4, cudaMemcpyHostToDevice));
                BENCH_CHECK(cudaMemcpy(d_ints + 2 * T, pos.data(), T * 4, cudaMemcpyHostToDevice));
                embed_layernorm_cpu(ref.data(), ids.data(), types.data(), pos.data(), word.host.data(),
                                    pos_emb.host.data(), type_emb.host.data(), w.host.data(), b.host.data(), eps, T, C, cpu_kernels_best());
                auto run = [&]() {
                    return embed_layernorm_cuda(out, d_ints, d_ints + T, d_ints + 2 * T, word.dev, pos_emb.dev,
                                                type_emb.dev, w.dev, b.dev, eps, T, C, dt, 0);
                };
                BENCH_CHECK(cudaMemset(out, 0xff, n * es));
                BENCH_CHECK(run());
                char what[64];
                snprintf(what, sizeof what, "v3 (embed) %s %s", ember_dtype_str(dt), shape_name);
                if (bench_validate(what, bench_download(out, n, dt), ref, tol, tol)) {
                    const float ms = bench_time_ms(run);
                    /* three rows gathered and one written per token */
                    printf("%-8s %-5s %-14s %10.4f %10.1f\n", "3 embed", ember_dtype_str(dt), shape_name, ms,
                           4.0 * n * es / ms / 1e6);
                }
                cudaFree(d_ints);
                cudaFree(word.dev);
                cudaFree(pos_emb.dev);
                cudaFree(type_emb.dev);
            }
            cudaFree(out);
            for (bench_tensor *t : {&inp, &res, &bias, &w, &b}) cudaFree(t->dev);
        }
    }
    return 0;
}
