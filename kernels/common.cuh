/* Device helpers shared by every kernel family (C++ only; the C side sees the
 * entry points declared in each family's .cuh).
 *
 * Storage types: float, __half, __nv_bfloat16. Math is always fp32: values
 * are widened on load and rounded (to nearest even) once on store. */
#ifndef EMBER_KERNELS_COMMON_CUH
#define EMBER_KERNELS_COMMON_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>
#include <string.h>

#include "ember.h"

#define WARP_SIZE 32
#define FULL_MASK 0xffffffffu

__device__ __forceinline__ float to_f32(float x) { return x; }
__device__ __forceinline__ float to_f32(__half x) { return __half2float(x); }
__device__ __forceinline__ float to_f32(__nv_bfloat16 x) { return __bfloat162float(x); }

template <typename D> __device__ __forceinline__ D from_f32(float x);
template <> __device__ __forceinline__ float from_f32<float>(float x) { return x; }
template <> __device__ __forceinline__ __half from_f32<__half>(float x) { return __float2half_rn(x); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f32<__nv_bfloat16>(float x) {
    return __float2bfloat16_rn(x);
}

/* Elements of D in one 16-byte access: 4 floats or 8 halves. */
template <typename D> struct vec16 {
    static constexpr int N = 16 / (int)sizeof(D);
};

/* Load 16 bytes (p must be 16-byte aligned) and widen to fp32. */
template <typename D> __device__ __forceinline__ void load16_f32(float (&out)[vec16<D>::N], const D *p) {
    uint4 raw = __ldg(reinterpret_cast<const uint4 *>(p));
    D v[vec16<D>::N];
    memcpy(v, &raw, 16);
#pragma unroll
    for (int i = 0; i < vec16<D>::N; i++) out[i] = to_f32(v[i]);
}

/* As load16_f32, through the ordinary (coherent) path: for buffers the same
 * kernel may also write (in-place ops). */
template <typename D> __device__ __forceinline__ void load16_f32_rw(float (&out)[vec16<D>::N], const D *p) {
    uint4 raw = *reinterpret_cast<const uint4 *>(p);
    D v[vec16<D>::N];
    memcpy(v, &raw, 16);
#pragma unroll
    for (int i = 0; i < vec16<D>::N; i++) out[i] = to_f32(v[i]);
}

/* Round to D and store 16 bytes (p 16-byte aligned). */
template <typename D> __device__ __forceinline__ void store16_f32(D *p, const float (&in)[vec16<D>::N]) {
    D v[vec16<D>::N];
#pragma unroll
    for (int i = 0; i < vec16<D>::N; i++) v[i] = from_f32<D>(in[i]);
    uint4 raw;
    memcpy(&raw, v, 16);
    *reinterpret_cast<uint4 *>(p) = raw;
}

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = WARP_SIZE / 2; o > 0; o >>= 1) v += __shfl_xor_sync(FULL_MASK, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = WARP_SIZE / 2; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, o));
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, at most 1024); every
 * thread gets the result. Contains __syncthreads: call from all threads. */
__device__ __forceinline__ float block_sum(float v) {
    __shared__ float partial[WARP_SIZE];
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE;
    const int n_warps = blockDim.x / WARP_SIZE;
    v = warp_sum(v);
    __syncthreads(); /* partial may still be read by a previous call */
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = lane < n_warps ? partial[lane] : 0.0f;
    return warp_sum(v);
}

static inline unsigned int ceil_div_u(int64_t a, int64_t b) { return (unsigned int)((a + b - 1) / b); }

/* A grid for a grid-stride loop over n items: enough blocks to fill any
 * current GPU several times over, never more than the work needs. */
static inline unsigned int grid_for(int64_t n, int block) {
    int64_t blocks = (n + block - 1) / block;
    if (blocks > 65536) blocks = 65536;
    return (unsigned int)(blocks > 0 ? blocks : 1);
}

/* Run `body` with D bound to the storage type of dtype; returns
 * cudaErrorInvalidValue for an unknown dtype. */
#define DISPATCH_DTYPE(dtype, D, ...)                                                                                 \
    do {                                                                                                              \
        switch (dtype) {                                                                                              \
        case EMBER_DTYPE_FP32: {                                                                                      \
            typedef float D;                                                                                          \
            __VA_ARGS__;                                                                                              \
        } break;                                                                                                      \
        case EMBER_DTYPE_FP16: {                                                                                      \
            typedef __half D;                                                                                         \
            __VA_ARGS__;                                                                                              \
        } break;                                                                                                      \
        case EMBER_DTYPE_BF16: {                                                                                      \
            typedef __nv_bfloat16 D;                                                                                  \
            __VA_ARGS__;                                                                                              \
        } break;                                                                                                      \
        default: return cudaErrorInvalidValue;                                                                        \
        }                                                                                                             \
    } while (0)

/* 16-byte alignment of a device pointer (vectorised kernels need it). */
static inline bool aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

#endif
