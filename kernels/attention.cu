/* Fused multi-head self-attention over packed sequences.
 *
 * Shapes: S sequences (cu_seqlens), T tokens, NH heads of HS, C = NH * HS;
 * qkv (T, 3C) = [q | k | v] per token, without bias; out (T, C).
 *
 * Three kernels:
 *  - attention_mma_kernel (fp16 / bf16, HS 32 or 64; the default):
 *    FlashAttention-2 style on mma.sync.m16n8k16 with S, P and O in
 *    registers, K / V tiles double-buffered through cp.async. The body is
 *    attention_mma.inc (see there), shared with a CPU emulation in the tests.
 *  - attention_tc_kernel (fp16 / bf16, HS 32 or 64; "wmma"): the first
 *    tensor-core kernel, kept for comparison (bench/kernels) and as a
 *    fallback (EMBER_CUDA_ATTENTION=wmma): WMMA 16x16x16 products, one block
 *    per (sequence, head, tile of BQ = 16 * NW queries), K and V through
 *    shared memory in tiles of BK = 64, each warp's scores and output
 *    accumulators round-tripping through shared memory (WMMA fragments have
 *    no documented element layout).
 *  - attention_scalar_kernel (every dtype, HS % 8 == 0, HS <= 128): one warp
 *    per query row, plain fp32 FMAs, the same online softmax. The fp32
 *    validation path and the fallback for other head sizes.
 *
 * MPNet's relative position bias (rel_bias, (ATTN_REL_BUCKETS, NH) fp32, or
 * NULL): every kernel copies its head's 32 entries to shared memory and adds
 * the entry of attn_rel_bucket(key - query) to each scaled score; no
 * seq x seq matrix exists anywhere.
 *
 * No work is done for padding: a block only covers real tokens of one
 * sequence; the tails of the last query and key tiles are zero-filled in
 * shared memory, masked out of the softmax and never stored.
 */
#include <math.h>
#include <mma.h>

#include "attention.cuh"
#include "common.cuh"
#include "rel_bucket.cuh"

using namespace nvcuda;

/* Round x up to a multiple of 128 bytes (each shared-memory region starts
 * there; WMMA needs 32-byte aligned pointers). */
static constexpr size_t align128(size_t x) { return (x + 127) / 128 * 128; }

/* ---- tensor-core kernel ------------------------------------------------------------ */

template <typename D, int HS, int NW> struct attn_tc_cfg {
    static constexpr int BQ = 16 * NW; /* queries per block */
    static constexpr int BK = 64;      /* keys per tile */
    /* Leading dimensions, padded (by 16 bytes for D, 16 bytes for floats) so
     * that rows start on different banks; WMMA needs ldm % 8 == 0 for 16-bit
     * types and % 4 == 0 for float: both hold. */
    static constexpr int LDQ = HS + 8, LDK = HS + 8, LDV = HS + 8; /* D */
    static constexpr int LDS = BK + 4;                             /* float */
    static constexpr int LDP = BK + 8;                             /* D */
    static constexpr int LDO = HS + 4;                             /* float */
    static constexpr size_t q_off = 0;
    static constexpr size_t k_off = q_off + align128((size_t)BQ * LDQ * sizeof(D));
    static constexpr size_t v_off = k_off + align128((size_t)BK * LDK * sizeof(D));
    static constexpr size_t s_off = v_off + align128((size_t)BK * LDV * sizeof(D));
    static constexpr size_t p_off = s_off + align128((size_t)NW * 16 * LDS * sizeof(float));
    static constexpr size_t o_off = p_off + align128((size_t)NW * 16 * LDP * sizeof(D));
    static constexpr size_t rb_off = o_off + align128((size_t)NW * 16 * LDO * sizeof(float));
    static constexpr size_t smem = rb_off + align128(ATTN_REL_BUCKETS * sizeof(float));
};

/* dst[0..8) = src[0..8) + bias[0..8), rounded to D; zeros when src is NULL
 * (rows past the end of the sequence). 16-byte aligned, 8 elements. */
template <typename D> __device__ __forceinline__ void tile_load8(D *dst, const D *src, const D *bias) {
    static_assert(sizeof(D) == 2, "tile_load8 moves 8 16-bit values");
    float v[8];
    if (src) {
        float b[8];
        load16_f32(v, src);
        load16_f32(b, bias);
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] += b[i];
    } else {
#pragma unroll
        for (int i = 0; i < 8; i++) v[i] = 0.0f;
    }
    store16_f32(dst, v);
}

/* The WMMA kernel's body (long: one block's whole pass over its queries, its
 * fragments and running softmax state in registers across the key loop;
 * pieces as separate functions would only pass them all around). */
template <typename D, int HS, int NW>
__global__ void __launch_bounds__(NW * WARP_SIZE, 1)
    attention_tc_kernel(D *__restrict__ out, const D *__restrict__ qkv, const D *__restrict__ bias,
                        const float *__restrict__ rel_bias, const int32_t *__restrict__ cu_seqlens, int32_t NH,
                        float scale) {
    using cfg = attn_tc_cfg<D, HS, NW>;
    constexpr int BQ = cfg::BQ, BK = cfg::BK, NT = NW * WARP_SIZE;
    constexpr int LDQ = cfg::LDQ, LDK = cfg::LDK, LDV = cfg::LDV, LDS = cfg::LDS, LDP = cfg::LDP, LDO = cfg::LDO;
    constexpr int CHUNKS = HS / 8; /* 16-byte chunks per row of a head */
    static_assert(HS % 16 == 0 && BK == 64, "the softmax below gives each lane 32 of a row's 64 columns");

    extern __shared__ __align__(128) unsigned char smem[];
    D *Qs = reinterpret_cast<D *>(smem + cfg::q_off);         /* (BQ, LDQ) */
    D *Ks = reinterpret_cast<D *>(smem + cfg::k_off);         /* (BK, LDK) */
    D *Vs = reinterpret_cast<D *>(smem + cfg::v_off);         /* (BK, LDV) */
    float *Ss = reinterpret_cast<float *>(smem + cfg::s_off); /* (NW, 16, LDS) scores of each warp */
    D *Ps = reinterpret_cast<D *>(smem + cfg::p_off);         /* (NW, 16, LDP) probabilities */
    float *Os = reinterpret_cast<float *>(smem + cfg::o_off); /* (NW, 16, LDO) output accumulators */
    float *RB = reinterpret_cast<float *>(smem + cfg::rb_off); /* (ATTN_REL_BUCKETS) head h's position bias */

    const int s = blockIdx.x, h = blockIdx.y, q0 = blockIdx.z * BQ;
    const int64_t t0 = cu_seqlens[s];
    const int L = cu_seqlens[s + 1] - cu_seqlens[s];
    if (q0 >= L) return; /* a tile past this sequence's end: uniform over the block */

    const int C = NH * HS;
    const int64_t C3 = 3 * (int64_t)C;
    const int tid = threadIdx.x, warp = tid / WARP_SIZE, lane = tid % WARP_SIZE;

    /* Q tile, bias added; rows past L are zeros. */
    for (int i = tid; i < BQ * CHUNKS; i += NT) {
        const int r = i / CHUNKS, c = (i % CHUNKS) * 8;
        const D *src = q0 + r < L ? qkv + (t0 + q0 + r) * C3 + h * HS + c : nullptr;
        tile_load8(Qs + r * LDQ + c, src, bias + h * HS + c);
    }
    float *Sw = Ss + warp * 16 * LDS;
    D *Pw = Ps + warp * 16 * LDP;
    float *Ow = Os + warp * 16 * LDO;
    for (int i = lane; i < 16 * LDO; i += WARP_SIZE) Ow[i] = 0.0f;
    if (rel_bias)
        for (int i = tid; i < ATTN_REL_BUCKETS; i += NT) RB[i] = rel_bias[i * NH + h];
    __syncthreads();

    /* A warp whose 16 rows all lie past L keeps to the barriers but skips the math. */
    const bool active = q0 + warp * 16 < L;
    wmma::fragment<wmma::matrix_a, 16, 16, 16, D, wmma::row_major> qf[HS / 16];
    if (active) {
#pragma unroll
        for (int k = 0; k < HS / 16; k++) wmma::load_matrix_sync(qf[k], Qs + warp * 16 * LDQ + k * 16, LDQ);
    }

    /* The softmax: lane handles row r of the warp's 16, columns
     * [half * 32, half * 32 + 32) of the key tile; the two lanes of a row
     * (lane and lane ^ 16) combine through shuffles and hold the same m, l.
     * Column order is rotated per lane so that the 32 lanes hit 32 different
     * banks of Sw (row stride LDS = 68 floats: bank = 5r + 16 half + j). */
    const int r = lane & 15, half = lane >> 4;
    float m_run = -INFINITY, l_run = 0.0f;

    for (int kt = 0; kt < L; kt += BK) {
        __syncthreads(); /* every warp is done with the previous K, V tile */
        for (int i = tid; i < BK * CHUNKS; i += NT) {
            const int j = i / CHUNKS, c = (i % CHUNKS) * 8;
            const bool ok = kt + j < L;
            const D *row = qkv + (t0 + kt + j) * C3 + h * HS + c;
            tile_load8(Ks + j * LDK + c, ok ? row + C : nullptr, bias + C + h * HS + c);
            tile_load8(Vs + j * LDV + c, ok ? row + 2 * C : nullptr, bias + 2 * C + h * HS + c);
        }
        __syncthreads();
        if (!active) continue;

        /* Sw (16, BK) = Q_w (16, HS) K^T: K is (BK, HS) row-major in shared
         * memory, which is K^T (HS, BK) column-major. */
#pragma unroll
        for (int n = 0; n < BK / 16; n++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> sf;
            wmma::fill_fragment(sf, 0.0f);
#pragma unroll
            for (int k = 0; k < HS / 16; k++) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, D, wmma::col_major> kf;
                wmma::load_matrix_sync(kf, Ks + n * 16 * LDK + k * 16, LDK);
                wmma::mma_sync(sf, qf[k], kf, sf);
            }
            wmma::store_matrix_sync(Sw + n * 16, sf, LDS, wmma::mem_row_major);
        }
        __syncwarp();

        const int n_valid = min(BK, L - kt); /* >= 1: kt < L */
        /* ss: what scales a score of Sw; with the position bias, the scores
         * are scaled and biased in place first (each lane its own columns) */
        float ss = scale;
        if (rel_bias) {
            const int q = q0 + warp * 16 + r;
#pragma unroll 8
            for (int j = 0; j < 32; j++) {
                const int c = half * 32 + ((j + r + 16 * half) & 31);
                if (c < n_valid) Sw[r * LDS + c] = Sw[r * LDS + c] * scale + RB[attn_rel_bucket(kt + c - q)];
            }
            ss = 1.0f;
        }
        /* Two passes over Sw (max, then exp) rather than 32 scores held in
         * registers: shared-memory reads are cheap here, registers are not. */
        float mx = -INFINITY;
#pragma unroll 8
        for (int j = 0; j < 32; j++) {
            const int c = half * 32 + ((j + r + 16 * half) & 31);
            if (c < n_valid) mx = fmaxf(mx, Sw[r * LDS + c]);
        }
        mx = fmaxf(mx, __shfl_xor_sync(FULL_MASK, mx, 16)) * ss;
        /* mx is finite: column 0 of the tile is a real key. ss > 0, so the
         * maximum of the scaled scores is the scaled maximum. */
        const float m_new = fmaxf(m_run, mx);
        const float alpha = __expf(m_run - m_new); /* 0 on the first tile (m_run = -inf) */
        float sum = 0.0f;
#pragma unroll 8
        for (int j = 0; j < 32; j++) {
            const int c = half * 32 + ((j + r + 16 * half) & 31);
            const float p = c < n_valid ? __expf(Sw[r * LDS + c] * ss - m_new) : 0.0f;
            Pw[r * LDP + c] = from_f32<D>(p);
            sum += p;
        }
        sum += __shfl_xor_sync(FULL_MASK, sum, 16);
        l_run = l_run * alpha + sum;
        m_run = m_new;
#pragma unroll
        for (int c = 0; c < HS / 2; c++) Ow[r * LDO + half * (HS / 2) + c] *= alpha;
        __syncwarp();

        /* Ow (16, HS) += Pw (16, BK) V (BK, HS) */
#pragma unroll
        for (int n = 0; n < HS / 16; n++) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> of;
            wmma::load_matrix_sync(of, Ow + n * 16, LDO, wmma::mem_row_major);
#pragma unroll
            for (int k = 0; k < BK / 16; k++) {
                wmma::fragment<wmma::matrix_a, 16, 16, 16, D, wmma::row_major> pf;
                wmma::fragment<wmma::matrix_b, 16, 16, 16, D, wmma::row_major> vf;
                wmma::load_matrix_sync(pf, Pw + k * 16, LDP);
                wmma::load_matrix_sync(vf, Vs + k * 16 * LDV + n * 16, LDV);
                wmma::mma_sync(of, pf, vf, of);
            }
            wmma::store_matrix_sync(Ow + n * 16, of, LDO, wmma::mem_row_major);
        }
        __syncwarp();
    }

    if (!active) return;
    const int q = q0 + warp * 16 + r;
    if (q < L) {
        const float inv = 1.0f / l_run; /* l_run >= 1: the row's maximum contributes exp(0) */
        D *o = out + (t0 + q) * C + h * HS + half * (HS / 2);
        const float *src = Ow + r * LDO + half * (HS / 2);
#pragma unroll
        for (int c = 0; c < HS / 2; c += 8) {
            float y[8];
#pragma unroll
            for (int i = 0; i < 8; i++) y[i] = src[c + i] * inv;
            store16_f32(o + c, y);
        }
    }
}

template <typename D, int HS, int NW>
static cudaError_t attention_tc_launch(D *out, const D *qkv, const D *bias, const float *rel_bias,
                                       const int32_t *cu_seqlens, int32_t S, int32_t max_seqlen, int32_t NH,
                                       cudaStream_t stream) {
    using cfg = attn_tc_cfg<D, HS, NW>;
    auto kernel = attention_tc_kernel<D, HS, NW>;
    /* Over 48 KiB of dynamic shared memory needs an opt-in, per device; it
     * is cheap and idempotent, so it is set on every launch rather than
     * tracked per device. */
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)cfg::smem);
    if (e != cudaSuccess) return e;
    const dim3 grid((unsigned int)S, (unsigned int)NH, ceil_div_u(max_seqlen, cfg::BQ));
    kernel<<<grid, NW * WARP_SIZE, cfg::smem, stream>>>(out, qkv, bias, rel_bias, cu_seqlens, NH,
                                                        1.0f / sqrtf((float)HS));
    return cudaGetLastError();
}

/* Warps per block by the longest sequence: short sequences (STS-B-like
 * sentences) get small query tiles so that less of each tile is padding. */
template <typename D, int HS>
static cudaError_t attention_tc_dispatch(D *out, const D *qkv, const D *bias, const float *rel_bias,
                                         const int32_t *cu_seqlens, int32_t S, int32_t max_seqlen, int32_t NH,
                                         cudaStream_t stream) {
    if (max_seqlen <= 16)
        return attention_tc_launch<D, HS, 1>(out, qkv, bias, rel_bias, cu_seqlens, S, max_seqlen, NH, stream);
    if (max_seqlen <= 32)
        return attention_tc_launch<D, HS, 2>(out, qkv, bias, rel_bias, cu_seqlens, S, max_seqlen, NH, stream);
    return attention_tc_launch<D, HS, 4>(out, qkv, bias, rel_bias, cu_seqlens, S, max_seqlen, NH, stream);
}

/* ---- mma.sync kernel (attention_mma.inc on the GPU's instructions) ------------------- */

template <typename D> __device__ __forceinline__ float attn_to_f32(D x) { return to_f32(x); }
template <typename D> __device__ __forceinline__ D attn_from_f32(float x) { return from_f32<D>(x); }
template <typename D> __device__ __forceinline__ void attn_load8(float (&v)[8], const D *p) { load16_f32<D>(v, p); }
template <typename D> __device__ __forceinline__ void attn_store8(D *p, const float (&v)[8]) { store16_f32<D>(p, v); }
template <typename D> __device__ __forceinline__ void attn_store2(D *p, uint32_t v) {
    *reinterpret_cast<uint32_t *>(p) = v;
}

__device__ __forceinline__ void attn_ldsm_x4(uint32_t (&r)[4], const void *p) {
    const unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

__device__ __forceinline__ void attn_ldsm_x4_t(uint32_t (&r)[4], const void *p) {
    const unsigned a = (unsigned)__cvta_generic_to_shared(p);
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(a));
}

template <typename D>
__device__ __forceinline__ void attn_mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1);
template <>
__device__ __forceinline__ void attn_mma<__half>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}
template <>
__device__ __forceinline__ void attn_mma<__nv_bfloat16>(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                                        uint32_t b1) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
        "{%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ float attn_shfl_xor(float v, int mask) { return __shfl_xor_sync(FULL_MASK, v, mask); }
__device__ __forceinline__ void attn_block_sync() { __syncthreads(); }

/* 16 bytes global -> shared, asynchronously; src-size 0 fills zeros. */
__device__ __forceinline__ void attn_cp_async16(void *dst, const void *src, bool valid) {
    const unsigned d = (unsigned)__cvta_generic_to_shared(dst);
    const size_t g = __cvta_generic_to_global(src);
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(d), "l"(g), "r"(valid ? 16 : 0)
                 : "memory");
}
__device__ __forceinline__ void attn_cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::: "memory"); }
template <int N> __device__ __forceinline__ void attn_cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

__device__ __forceinline__ float attn_exp2(float x) {
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;\n" : "=f"(y) : "f"(x));
    return y;
}

#define ATTN_FN __device__ __forceinline__
#include "attention_mma.inc"
#undef ATTN_FN

template <typename D, int HS, int NW, int BK, bool REL>
__global__ void __launch_bounds__(NW * WARP_SIZE)
    attention_mma_kernel(D *__restrict__ out, const D *__restrict__ qkv, const D *__restrict__ bias,
                         const float *__restrict__ rel_bias, const int32_t *__restrict__ cu_seqlens, int32_t NH,
                         float scale_log2) {
    extern __shared__ __align__(16) unsigned char smem_mma[];
    attention_mma_block<D, HS, NW, BK, REL>(out, qkv, bias, rel_bias, cu_seqlens, NH, scale_log2, (int)blockIdx.x,
                                       (int)blockIdx.y, (int)blockIdx.z, (int)threadIdx.x, smem_mma);
}

template <typename D, int HS, int NW, int BK>
static cudaError_t attention_mma_launch(D *out, const D *qkv, const D *bias, const float *rel_bias,
                                        const int32_t *cu_seqlens, int32_t S, int32_t max_seqlen, int32_t NH,
                                        cudaStream_t stream) {
    using cfg = attn_mma_cfg<D, HS, NW, BK>;
    static_assert(cfg::smem <= 48 * 1024, "no opt-in to more than 48 KiB of shared memory here");
    const dim3 grid((unsigned int)S, (unsigned int)NH, ceil_div_u(max_seqlen, cfg::BQ));
    const float scale_log2 = 1.4426950408889634f / sqrtf((float)HS);
    if (rel_bias)
        attention_mma_kernel<D, HS, NW, BK, true>
            <<<grid, NW * WARP_SIZE, cfg::smem, stream>>>(out, qkv, bias, rel_bias, cu_seqlens, NH, scale_log2);
    else
        attention_mma_kernel<D, HS, NW, BK, false>
            <<<grid, NW * WARP_SIZE, cfg::smem, stream>>>(out, qkv, bias, rel_bias, cu_seqlens, NH, scale_log2);
    return cudaGetLastError();
}

/* Query tile and key tile by the longest sequence (attn_mma_warps). */
template <typename D, int HS>
static cudaError_t attention_mma_dispatch(D *out, const D *qkv, const D *bias, const float *rel_bias,
                                          const int32_t *cu_seqlens, int32_t S, int32_t max_seqlen, int32_t NH,
                                          cudaStream_t stream) {
    switch (attn_mma_warps(max_seqlen)) {
    case 1:
        return attention_mma_launch<D, HS, 1, 16>(out, qkv, bias, rel_bias, cu_seqlens, S, max_seqlen, NH, stream);
    case 2:
        return attention_mma_launch<D, HS, 2, 32>(out, qkv, bias, rel_bias, cu_seqlens, S, max_seqlen, NH, stream);
    default:
        return attention_mma_launch<D, HS, 4, 64>(out, qkv, bias, rel_bias, cu_seqlens, S, max_seqlen, NH, stream);
    }
}

/* ---- scalar kernel ----------------------------------------------------------------- */

#define SCALAR_ROWS 8 /* query rows (= warps) per block */
#define SCALAR_BK 32  /* keys per tile: one per lane */

template <typename D>
__global__ void __launch_bounds__(SCALAR_ROWS *WARP_SIZE)
    attention_scalar_kernel(D *__restrict__ out, const D *__restrict__ qkv, const D *__restrict__ bias,
                            const float *__restrict__ rel_bias, const int32_t *__restrict__ cu_seqlens, int32_t NH,
                            int32_t HS, float scale) {
    /* K rows padded by one float: lane j reads row j, column d, so the 32
     * lanes fall on 32 banks. */
    __shared__ float Ks[SCALAR_BK][ATTENTION_MAX_HS + 1];
    __shared__ float Vs[SCALAR_BK][ATTENTION_MAX_HS];
    __shared__ float Qs[SCALAR_ROWS][ATTENTION_MAX_HS];
    __shared__ float RB[ATTN_REL_BUCKETS]; /* head h's position bias */
    constexpr int NT = SCALAR_ROWS * WARP_SIZE, DPL = ATTENTION_MAX_HS / WARP_SIZE; /* dims per lane */

    const int s = blockIdx.x, h = blockIdx.y, q0 = blockIdx.z * SCALAR_ROWS;
    const int64_t t0 = cu_seqlens[s];
    const int L = cu_seqlens[s + 1] - cu_seqlens[s];
    if (q0 >= L) return;
    const int C = NH * HS;
    const int64_t C3 = 3 * (int64_t)C;
    const int tid = threadIdx.x, warp = tid / WARP_SIZE, lane = tid % WARP_SIZE;
    const int q = q0 + warp;
    const bool active = q < L;

    if (active) {
        const D *qrow = qkv + (t0 + q) * C3 + h * HS;
        for (int d = lane; d < HS; d += WARP_SIZE) Qs[warp][d] = (to_f32(qrow[d]) + to_f32(bias[h * HS + d])) * scale;
    }
    if (rel_bias && tid < ATTN_REL_BUCKETS) RB[tid] = rel_bias[tid * NH + h];
    float acc[DPL];
#pragma unroll
    for (int j = 0; j < DPL; j++) acc[j] = 0.0f;
    float m_run = -INFINITY, l_run = 0.0f;

    for (int kt = 0; kt < L; kt += SCALAR_BK) {
        __syncthreads(); /* previous tile consumed (and, the first time, Qs written) */
        for (int i = tid; i < SCALAR_BK * HS; i += NT) {
            const int j = i / HS, d = i % HS;
            float k = 0.0f, v = 0.0f;
            if (kt + j < L) {
                const D *row = qkv + (t0 + kt + j) * C3 + h * HS + d;
                k = to_f32(row[C]) + to_f32(bias[C + h * HS + d]);
                v = to_f32(row[2 * C]) + to_f32(bias[2 * C + h * HS + d]);
            }
            Ks[j][d] = k;
            Vs[j][d] = v;
        }
        __syncthreads();
        if (!active) continue;

        const bool valid = kt + lane < L;
        float score = -INFINITY;
        if (valid) {
            score = 0.0f;
            for (int d = 0; d < HS; d++) score += Qs[warp][d] * Ks[lane][d];
            if (rel_bias) score += RB[attn_rel_bucket(kt + lane - q)];
        }
        const float m_new = fmaxf(m_run, warp_max(score)); /* finite: key kt is real */
        const float alpha = expf(m_run - m_new);
        const float p = valid ? expf(score - m_new) : 0.0f;
        l_run = l_run * alpha + warp_sum(p);
        m_run = m_new;
#pragma unroll
        for (int j = 0; j < DPL; j++) acc[j] *= alpha;
        for (int kk = 0; kk < SCALAR_BK; kk++) {
            const float pk = __shfl_sync(FULL_MASK, p, kk);
#pragma unroll
            for (int j = 0; j < DPL; j++) {
                const int d = lane + WARP_SIZE * j;
                if (d < HS) acc[j] += pk * Vs[kk][d];
            }
        }
    }
    if (!active) return;
    D *o = out + (t0 + q) * C + h * HS;
    const float inv = 1.0f / l_run;
#pragma unroll
    for (int j = 0; j < DPL; j++) {
        const int d = lane + WARP_SIZE * j;
        if (d < HS) o[d] = from_f32<D>(acc[j] * inv);
    }
}

template <typename D>
static cudaError_t attention_scalar_launch(D *out, const D *qkv, const D *bias, const float *rel_bias,
                                           const int32_t *cu_seqlens, int32_t S, int32_t max_seqlen, int32_t NH,
                                           int32_t HS, cudaStream_t stream) {
    const dim3 grid((unsigned int)S, (unsigned int)NH, ceil_div_u(max_seqlen, SCALAR_ROWS));
    attention_scalar_kernel<D><<<grid, SCALAR_ROWS * WARP_SIZE, 0, stream>>>(out, qkv, bias, rel_bias, cu_seqlens,
                                                                             NH, HS, 1.0f / sqrtf((float)HS));
    return cudaGetLastError();
}

/* ---- entry points ------------------------------------------------------------------ */

static cudaError_t attention_check(const void *out, const void *qkv, const void *bias, int32_t S, int32_t max_seqlen,
                                   int32_t NH, int32_t HS) {
    if (S < 0 || max_seqlen < 0 || NH <= 0 || HS <= 0 || HS % 8 != 0 || HS > ATTENTION_MAX_HS)
        return cudaErrorInvalidValue;
    /* grid: (S, NH, query tiles); y and z are limited to 65535 */
    if (NH > 65535 || (max_seqlen + SCALAR_ROWS - 1) / SCALAR_ROWS > 65535) return cudaErrorInvalidValue;
    if (!aligned16(out) || !aligned16(qkv) || !aligned16(bias)) return cudaErrorMisalignedAddress;
    return cudaSuccess;
}

extern "C" int attention_uses_tensor_cores(ember_dtype dtype, int32_t HS) {
    return (dtype == EMBER_DTYPE_FP16 || dtype == EMBER_DTYPE_BF16) && (HS == 32 || HS == 64);
}

extern "C" cudaError_t attention_scalar_cuda(void *out, const void *qkv, const void *bias, const float *rel_bias,
                                             const int32_t *cu_seqlens, int32_t S, int32_t max_seqlen, int32_t NH,
                                             int32_t HS, ember_dtype dtype, cudaStream_t stream) {
    cudaError_t e = attention_check(out, qkv, bias, S, max_seqlen, NH, HS);
    if (e != cudaSuccess) return e;
    if (S == 0 || max_seqlen == 0) return cudaSuccess;
    DISPATCH_DTYPE(dtype, D,
                   return attention_scalar_launch<D>((D *)out, (const D *)qkv, (const D *)bias, rel_bias, cu_seqlens,
                                                     S, max_seqlen, NH, HS, stream));
    return cudaSuccess;
}

/* fp16 / bf16 with HS 32 or 64 through kernel family F (mma or tc), else
 * the scalar kernel. */
#define ATTENTION_TC_ENTRY(F)                                                                                         \
    cudaError_t e = attention_check(out, qkv, bias, S, max_seqlen, NH, HS);                                           \
    if (e != cudaSuccess) return e;                                                                                   \
    if (S == 0 || max_seqlen == 0) return cudaSuccess;                                                                \
    if (!attention_uses_tensor_cores(dtype, HS))                                                                      \
        return attention_scalar_cuda(out, qkv, bias, rel_bias, cu_seqlens, S, max_seqlen, NH, HS, dtype, stream);     \
    if (dtype == EMBER_DTYPE_FP16) {                                                                                  \
        typedef __half H;                                                                                             \
        if (HS == 32)                                                                                                 \
            return F<H, 32>((H *)out, (const H *)qkv, (const H *)bias, rel_bias, cu_seqlens, S, max_seqlen, NH,       \
                            stream);                                                                                  \
        return F<H, 64>((H *)out, (const H *)qkv, (const H *)bias, rel_bias, cu_seqlens, S, max_seqlen, NH, stream);  \
    }                                                                                                                 \
    typedef __nv_bfloat16 B16;                                                                                        \
    if (HS == 32)                                                                                                     \
        return F<B16, 32>((B16 *)out, (const B16 *)qkv, (const B16 *)bias, rel_bias, cu_seqlens, S, max_seqlen, NH,   \
                          stream);                                                                                    \
    return F<B16, 64>((B16 *)out, (const B16 *)qkv, (const B16 *)bias, rel_bias, cu_seqlens, S, max_seqlen, NH,       \
                      stream)

extern "C" cudaError_t attention_cuda(void *out, const void *qkv, const void *bias, const float *rel_bias,
                                      const int32_t *cu_seqlens, int32_t S, int32_t max_seqlen, int32_t NH, int32_t HS,
                                      ember_dtype dtype, cudaStream_t stream) {
    ATTENTION_TC_ENTRY(attention_mma_dispatch);
}

extern "C" cudaError_t attention_wmma_cuda(void *out, const void *qkv, const void *bias, const float *rel_bias,
                                           const int32_t *cu_seqlens, int32_t S, int32_t max_seqlen, int32_t NH,
                                           int32_t HS, ember_dtype dtype, cudaStream_t stream) {
    ATTENTION_TC_ENTRY(attention_tc_dispatch);
}
#undef ATTENTION_TC_ENTRY
