/* Bias + residual + LayerNorm: one warp per row, the row in registers.
 *
 * Shapes: T tokens, C hidden size. */
#include "layernorm.cuh"

#define LN_WARPS 4 /* rows per block */

template <typename D, int NCHUNK>
__global__ void __launch_bounds__(LN_WARPS * WARP_SIZE, 4)
    bias_residual_layernorm_kernel(D *out, const D *__restrict__ inp, const D *__restrict__ bias,
                                   const D *residual, /* may be out: no __restrict__, coherent loads */
                                   const D *__restrict__ ln_w, const D *__restrict__ ln_b, float eps, int32_t T,
                                   int32_t C) {
    constexpr int N = vec16<D>::N;
    const int lane = threadIdx.x % WARP_SIZE;
    const int64_t t = (int64_t)blockIdx.x * LN_WARPS + threadIdx.x / WARP_SIZE;
    if (t >= T) return; /* the whole warp leaves; no block-wide barrier follows */
    const D *x_row = inp + t * C, *r_row = residual + t * C;
    float x[NCHUNK][N];
#pragma unroll
    for (int k = 0; k < NCHUNK; k++) {
        const int c = (lane + WARP_SIZE * k) * N;
        if (c < C) {
            float a[N], b[N], r[N];
            load16_f32(a, x_row + c);
            load16_f32(b, bias + c);
            load16_f32_rw(r, r_row + c);
#pragma unroll
            for (int i = 0; i < N; i++) x[k][i] = a[i] + b[i] + r[i];
        } else {
#pragma unroll
            for (int i = 0; i < N; i++) x[k][i] = 0.0f;
        }
    }
    /* Each lane reads its own chunks of residual before writing the same
     * chunks of out, so out == residual is safe. */
    layernorm_warp_store<D, NCHUNK>(out + t * C, x, ln_w, ln_b, eps, C, lane);
}

template <typename D>
static cudaError_t bias_residual_layernorm_launch(D *out, const D *inp, const D *bias, const D *residual,
                                                  const D *ln_w, const D *ln_b, float eps, int32_t T, int32_t C,
                                                  cudaStream_t stream) {
    const dim3 grid(ceil_div_u(T, LN_WARPS)), block(LN_WARPS * WARP_SIZE);
#define LAUNCH(NCHUNK)                                                                                                \
    bias_residual_layernorm_kernel<D, NCHUNK><<<grid, block, 0, stream>>>(out, inp, bias, residual, ln_w, ln_b, eps, \
                                                                          T, C)
    LAYERNORM_DISPATCH_CHUNKS(D, C, LAUNCH);
#undef LAUNCH
}

extern "C" cudaError_t bias_residual_layernorm_cuda(void *out, const void *inp, const void *bias, const void *residual,
                                                    const void *ln_w, const void *ln_b, float eps, int32_t T,
                                                    int32_t C, ember_dtype dtype, cudaStream_t stream) {
    if (T < 0 || C <= 0 || C % 8 != 0 || C > LAYERNORM_MAX_C) return cudaErrorInvalidValue;
    if (!aligned16(out) || !aligned16(inp) || !aligned16(bias) || !aligned16(residual) || !aligned16(ln_w) ||
        !aligned16(ln_b))
        return cudaErrorMisalignedAddress;
    if (out == inp) return cudaErrorInvalidValue;
    if (T == 0) return cudaSuccess;
    DISPATCH_DTYPE(dtype, D,
                   return bias_residual_layernorm_launch<D>((D *)out, (const D *)inp, (const D *)bias,
                                                            (const D *)residual, (const D *)ln_w, (const D *)ln_b, eps,
                                                            T, C, stream));
    return cudaSuccess;
}
