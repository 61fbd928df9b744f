/* Bias + activation, element-wise over (T, N) in 16-byte vectors. */
#include <math.h>

#include "activation.cuh"
#include "common.cuh"

template <int ACT> __device__ __forceinline__ float activate(float v);
/* BERT's "gelu": the exact form with erf, as PyTorch's nn.GELU() computes it. */
template <> __device__ __forceinline__ float activate<ACT_GELU_ERF>(float v) {
    return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
}
/* "gelu_new" / "gelu_pytorch_tanh": the tanh approximation. */
template <> __device__ __forceinline__ float activate<ACT_GELU_TANH>(float v) {
    return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}
template <> __device__ __forceinline__ float activate<ACT_RELU>(float v) { return v > 0.0f ? v : 0.0f; }

template <typename D, int ACT>
__global__ void __launch_bounds__(256)
    bias_act_kernel(D *out, const D *inp /* may be out */, const D *__restrict__ bias, int64_t n_vec, int32_t N) {
    constexpr int V = vec16<D>::N;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n_vec; i += (int64_t)gridDim.x * blockDim.x) {
        const int64_t e = i * V;
        const int32_t n = (int32_t)(e % N); /* N % V == 0: a vector never straddles two rows */
        float x[V], b[V];
        load16_f32_rw(x, inp + e);
        load16_f32(b, bias + n);
#pragma unroll
        for (int k = 0; k < V; k++) x[k] = activate<ACT>(x[k] + b[k]);
        store16_f32(out + e, x);
    }
}

template <typename D>
static cudaError_t bias_act_launch(D *out, const D *inp, const D *bias, activation act, int32_t T, int32_t N,
                                   cudaStream_t stream) {
    const int64_t n_vec = (int64_t)T * N / vec16<D>::N;
    const int block = 256;
    const unsigned int grid = grid_for(n_vec, block);
    switch (act) {
    case ACT_GELU_ERF: bias_act_kernel<D, ACT_GELU_ERF><<<grid, block, 0, stream>>>(out, inp, bias, n_vec, N); break;
    case ACT_GELU_TANH: bias_act_kernel<D, ACT_GELU_TANH><<<grid, block, 0, stream>>>(out, inp, bias, n_vec, N); break;
    case ACT_RELU: bias_act_kernel<D, ACT_RELU><<<grid, block, 0, stream>>>(out, inp, bias, n_vec, N); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t bias_act_cuda(void *out, const void *inp, const void *bias, activation act, int32_t T, int32_t N,
                                     ember_dtype dtype, cudaStream_t stream) {
    if (T < 0 || N <= 0 || N % 8 != 0) return cudaErrorInvalidValue;
    if (!aligned16(out) || !aligned16(inp) || !aligned16(bias)) return cudaErrorMisalignedAddress;
    if (T == 0) return cudaSuccess;
    DISPATCH_DTYPE(dtype, D,
                   return bias_act_launch<D>((D *)out, (const D *)inp, (const D *)bias, act, T, N, stream));
    return cudaSuccess;
}
