/* MPNet's relative position buckets on the device (and on the host, for the
 * attention emulator): the CUDA twin of rel_bucket (src/model/model.h), the
 * same integer arithmetic. C++ only. */
#ifndef EMBER_KERNELS_REL_BUCKET_CUH
#define EMBER_KERNELS_REL_BUCKET_CUH

#include <cuda_runtime.h>

/* Rows of the bias table the attention kernels read: (ATTN_REL_BUCKETS, NH). */
#define ATTN_REL_BUCKETS 32

/* The bucket of key j for query i, d = j - i: keys after the query 16..31,
 * at or before it 0..15; |d| < 8 a bucket each, then 2 + floor(log2(d^2))
 * up to |d| = 127, 15 beyond (transformers' buckets, 32 of them, largest
 * distance 128). */
__host__ __device__ __forceinline__ int attn_rel_bucket(int d) {
    const int base = d > 0 ? 16 : 0;
    const unsigned a = (unsigned)(d < 0 ? -d : d);
    if (a < 8) return base + (int)a;
    if (a >= 128) return base + 15;
#ifdef __CUDA_ARCH__
    return base + 2 + (31 - __clz((int)(a * a)));
#else
    return base + 2 + (31 - __builtin_clz(a * a));
#endif
}

#endif
