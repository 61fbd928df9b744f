/* fp32 <-> compute dtype, element-wise. */
#include "common.cuh"
#include "convert.cuh"

template <typename D> __global__ void __launch_bounds__(256) to_f32_kernel(float *out, const D *inp, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = to_f32(inp[i]);
}

template <typename D> __global__ void __launch_bounds__(256) from_f32_kernel(D *out, const float *inp, int64_t n) {
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
        out[i] = from_f32<D>(inp[i]);
}

extern "C" cudaError_t convert_to_f32_cuda(float *out, const void *inp, int64_t n, ember_dtype dtype,
                                           cudaStream_t stream) {
    if (n < 0) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    DISPATCH_DTYPE(dtype, D, to_f32_kernel<D><<<grid_for(n, 256), 256, 0, stream>>>(out, (const D *)inp, n));
    return cudaGetLastError();
}

extern "C" cudaError_t convert_from_f32_cuda(void *out, const float *inp, int64_t n, ember_dtype dtype,
                                             cudaStream_t stream) {
    if (n < 0) return cudaErrorInvalidValue;
    if (n == 0) return cudaSuccess;
    DISPATCH_DTYPE(dtype, D, from_f32_kernel<D><<<grid_for(n, 256), 256, 0, stream>>>((D *)out, inp, n));
    return cudaGetLastError();
}
