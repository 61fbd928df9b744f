/* Embedding gather + position + token type + LayerNorm: one warp per token.
 *
 * Shapes: T tokens, C hidden size; word (V, C), pos_emb (P, C), type_emb (TV, C). */
#include "embed.cuh"
#include "layernorm.cuh"

#define EMBED_WARPS 4 /* tokens per block */

template <typename D, int NCHUNK>
__global__ void __launch_bounds__(EMBED_WARPS * WARP_SIZE, 4)
    embed_layernorm_kernel(D *__restrict__ out, const int32_t *__restrict__ ids, const int32_t *__restrict__ type_ids,
                           const int32_t *__restrict__ pos, const D *__restrict__ word, const D *__restrict__ pos_emb,
                           const D *__restrict__ type_emb, const D *__restrict__ ln_w, const D *__restrict__ ln_b,
                           float eps, int32_t T, int32_t C) {
    constexpr int N = vec16<D>::N;
    const int lane = threadIdx.x % WARP_SIZE;
    const int64_t t = (int64_t)blockIdx.x * EMBED_WARPS + threadIdx.x / WARP_SIZE;
    if (t >= T) return;
    const D *we = word + (int64_t)ids[t] * C, *pe = pos_emb + (int64_t)pos[t] * C,
            *te = type_emb + (int64_t)type_ids[t] * C;
    float x[NCHUNK][N];
#pragma unroll
    for (int k = 0; k < NCHUNK; k++) {
        const int c = (lane + WARP_SIZE * k) * N;
        if (c < C) {
            float a[N], b[N], e[N];
            load16_f32(a, we + c);
            load16_f32(b, pe + c);
            load16_f32(e, te + c);
#pragma unroll
            for (int i = 0; i < N; i++) x[k][i] = a[i] + b[i] + e[i];
        } else {
#pragma unroll
            for (int i = 0; i < N; i++) x[k][i] = 0.0f;
        }
    }
    layernorm_warp_store<D, NCHUNK>(out + t * C, x, ln_w, ln_b, eps, C, lane);
}

template <typename D>
static cudaError_t embed_layernorm_launch(D *out, const int32_t *ids, const int32_t *type_ids, const int32_t *pos,
                                          const D *word, const D *pos_emb, const D *type_emb, const D *ln_w,
                                          const D *ln_b, float eps, int32_t T, int32_t C, cudaStream_t stream) {
    const dim3 grid(ceil_div_u(T, EMBED_WARPS)), block(EMBED_WARPS * WARP_SIZE);
#define LAUNCH(NCHUNK)                                                                                                \
    embed_layernorm_kernel<D, NCHUNK><<<grid, block, 0, stream>>>(out, ids, type_ids, pos, word, pos_emb, type_emb,  \
                                                                  ln_w, ln_b, eps, T, C)
    LAYERNORM_DISPATCH_CHUNKS(D, C, LAUNCH);
#undef LAUNCH
}

extern "C" cudaError_t embed_layernorm_cuda(void *out, const int32_t *ids, const int32_t *type_ids, const int32_t *pos,
                                            const void *word, const void *pos_emb, const void *type_emb,
                                            const void *ln_w, const void *ln_b, float eps, int32_t T, int32_t C,
                                            ember_dtype dtype, cudaStream_t stream) {
    if (T < 0 || C <= 0 || C % 8 != 0 || C > LAYERNORM_MAX_C) return cudaErrorInvalidValue;
    if (!aligned16(out) || !aligned16(word) || !aligned16(pos_emb) || !aligned16(type_emb) || !aligned16(ln_w) ||
        !aligned16(ln_b))
        return cudaErrorMisalignedAddress;
    if (T == 0) return cudaSuccess;
    DISPATCH_DTYPE(dtype, D,
                   return embed_layernorm_launch<D>((D *)out, ids, type_ids, pos, (const D *)word,
                                                    (const D *)pos_emb, (const D *)type_emb, (const D *)ln_w,
                                                    (const D *)ln_b, eps, T, C, stream));
    return cudaSuccess;
}
