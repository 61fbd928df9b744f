/* The AVX2 CPU kernels (AVX2 and FMA: Haswell and later, every AMD Zen),
 * compiled for those instructions only here and entered only on a processor
 * that has both (cpu_ops.c). The AVX-512 design (cpu_avx512.c) on 256-bit
 * vectors and half the registers.
 *
 * Every product sums each output over k in one fixed order (GEMM_KC blocks
 * of k, each in order), whatever the rows beside it, and attention works on
 * one (sequence, head) at a time: a text gets the same bits in any batch.
 *
 * In the matrix product MR x NR is the register tile (6 rows x 16 output
 * features, two vectors: 12 accumulators, 2 vectors of W and a broadcast of
 * the 16 ymm registers; on a Zen 3 EPYC 4 x 24 and 8 x 8 measured the same
 * within the noise, 3 x 32, which spills, half as fast). A tile (one thread's unit of work) is up to
 * TILE_ROWS rows: 48 keeps the tile's packed rows (288 KB at K = 1536) in a
 * Zen core's 512 KB L2, where 96 rows (as AVX-512's, for Intel's larger L2)
 * measured about 10% slower. Its products go GEMM_KC steps of k at a time
 * (16 KB of weights, kept in a 32 KB L1; 128 and 192 measured the same). */
#include <math.h>
#include <stdint.h>

#include "cpu_isa.h"
#include "cpu_ops.h"

#ifdef EMBER_X86_KERNELS
#include <immintrin.h>

#define GEMM_MR 6
#define GEMM_NV 2 /* vectors of 8 per panel row */
#define GEMM_NR (8 * GEMM_NV)
#define TILE_ROWS (8 * GEMM_MR)
#define GEMM_KC 256
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif

#define ALWAYS_INLINE inline __attribute__((always_inline))

/* The first min(n, 8) lanes set (n may be <= 0: none). */
static ALWAYS_INLINE __m256i tail_mask(int32_t n) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

/* p[0..min(n, 8)), zeros after: a masked load touches no memory past the
 * mask, so the tails never read beyond their buffers */
static ALWAYS_INLINE __m256 load_n(const float *p, int32_t n) {
    return n >= 8 ? _mm256_loadu_ps(p) : _mm256_maskload_ps(p, tail_mask(n));
}

static ALWAYS_INLINE void store_n(float *p, __m256 v, int32_t n) {
    if (n >= 8) _mm256_storeu_ps(p, v);
    else _mm256_maskstore_ps(p, tail_mask(n), v);
}

/* The eight lanes summed in one fixed order. */
static ALWAYS_INLINE float hsum(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static ALWAYS_INLINE float hmax(__m256 v) {
    __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_max_ps(s, _mm_movehl_ps(s, s));
    s = _mm_max_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* e^x to about 1 ulp, exp512's arithmetic: x = n ln2 + r, |r| <= ln2/2,
 * Cephes' expf polynomial for e^r, then scaling by 2^n. The clamp keeps
 * n in [-126, 127], so 2^n is a normal float built from its exponent bits
 * (AVX2 has no vscalefps) and the product is exact, as the scaling is. */
static ALWAYS_INLINE __m256 exp256(__m256 x) {
    /* below -87.33 the result would be subnormal: 0 instead, since
     * arithmetic on subnormals takes microcode assists (~100x slower) */
    const __m256 normal = _mm256_cmp_ps(x, _mm256_set1_ps(-87.33654475f), _CMP_GE_OQ);
    x = _mm256_max_ps(_mm256_min_ps(x, _mm256_set1_ps(88.3762626647949f)), _mm256_set1_ps(-87.33654475f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
    return _mm256_and_ps(normal, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

/* GELU with the exact erf: 0.5 x (1 + erf(x / sqrt 2)), gelu_erf512's
 * arithmetic: 1 + erf(z) is erfc(-z) for z < 0 and 2 - erfc(z) otherwise,
 * erfc by the Chebyshev fit of Numerical Recipes (relative error < 1.2e-7).
 * t = 1 / (1 + z/2) is a true division: AVX2's reciprocal estimate has 12
 * bits, and one Newton step from there leaves ~1.3e-7, as much again as the
 * fit's own error. Against float64 on [-12, 12]: at most 3.9e-7 off; in ulps
 * of the result, at most 6.3 for |x| <= 1 and 16 for x >= -3 (the fit's
 * Horner sum), more in the far negative tail, where the result is below 1e-3
 * and z^2's rounding in float becomes an error in the exponent. */
static ALWAYS_INLINE __m256 gelu_erf256(__m256 x) {
    const __m256 abs_mask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7FFFFFFF));
    __m256 z = _mm256_mul_ps(_mm256_and_ps(x, abs_mask), _mm256_set1_ps(0.70710678118654752f));
    __m256 t = _mm256_div_ps(_mm256_set1_ps(1.0f), _mm256_fmadd_ps(z, _mm256_set1_ps(0.5f), _mm256_set1_ps(1.0f)));
    __m256 p = _mm256_set1_ps(0.17087277f);
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.82215223f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.48851587f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.13520398f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.27886807f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-0.18628806f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.09678418f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(0.37409196f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(1.00002368f));
    p = _mm256_fmadd_ps(p, t, _mm256_set1_ps(-1.26551223f));
    /* erfc(z) < 1e-36 past z = 9: 0, which keeps every value normal */
    __m256 erfc = _mm256_and_ps(_mm256_cmp_ps(z, _mm256_set1_ps(9.0f), _CMP_LE_OQ),
                                _mm256_mul_ps(t, exp256(_mm256_fnmadd_ps(z, z, p))));
    __m256 neg = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_LT_OQ);
    __m256 one_plus_erf = _mm256_blendv_ps(_mm256_sub_ps(_mm256_set1_ps(2.0f), erfc), erfc, neg);
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), one_plus_erf);
}

/* 0.5 x (1 + tanh(u)), tanh(u) = 1 - 2 / (e^(2u) + 1) */
static ALWAYS_INLINE __m256 gelu_tanh256(__m256 x) {
    __m256 x3 = _mm256_mul_ps(_mm256_mul_ps(x, x), x);
    __m256 u = _mm256_mul_ps(_mm256_set1_ps(0.7978845608028654f), _mm256_fmadd_ps(x3, _mm256_set1_ps(0.044715f), x));
    __m256 e = exp256(_mm256_add_ps(u, u));
    __m256 th = _mm256_sub_ps(_mm256_set1_ps(1.0f),
                              _mm256_div_ps(_mm256_set1_ps(2.0f), _mm256_add_ps(e, _mm256_set1_ps(1.0f))));
    return _mm256_mul_ps(_mm256_mul_ps(_mm256_set1_ps(0.5f), x), _mm256_add_ps(_mm256_set1_ps(1.0f), th));
}

static ALWAYS_INLINE __m256 activate(__m256 v, int act) {
    switch (act) {
    case ACT_GELU_ERF: return gelu_erf256(v);
    case ACT_GELU_TANH: return gelu_tanh256(v);
    case ACT_RELU: return _mm256_max_ps(v, _mm256_setzero_ps());
    default: return v;
    }
}

/* Mean and variance in float with 8 partial sums, two passes (as the
 * reference: subtract the mean before squaring). Lanes past C load as zero
 * and are masked out of the squares. */
static void layernorm_row_avx2(float *out, const float *x, const float *w, const float *b, float eps, int32_t C) {
    __m256 s = _mm256_setzero_ps();
    for (int32_t c = 0; c < C; c += 8) s = _mm256_add_ps(s, load_n(x + c, C - c));
    float mean = hsum(s) / (float)C;
    __m256 mv = _mm256_set1_ps(mean), q = _mm256_setzero_ps();
    for (int32_t c = 0; c < C; c += 8) {
        __m256 d = _mm256_and_ps(_mm256_castsi256_ps(tail_mask(C - c)), _mm256_sub_ps(load_n(x + c, C - c), mv));
        q = _mm256_fmadd_ps(d, d, q);
    }
    float var = hsum(q) / (float)C;
    __m256 rstd = _mm256_set1_ps(1.0f / sqrtf(var + eps));
    for (int32_t c = 0; c < C; c += 8) {
        __m256 d = _mm256_mul_ps(_mm256_sub_ps(load_n(x + c, C - c), mv), rstd);
        store_n(out + c, _mm256_fmadd_ps(d, load_n(w + c, C - c), load_n(b + c, C - c)), C - c);
    }
}

static void embed_row_avx2(float *row, const float *we, const float *pe, const float *te, int32_t C) {
    for (int32_t c = 0; c < C; c += 8) {
        __m256 v = _mm256_add_ps(load_n(we + c, C - c), load_n(pe + c, C - c));
        store_n(row + c, _mm256_add_ps(v, load_n(te + c, C - c)), C - c);
    }
}

static void bias_residual_row_avx2(float *row, const float *x, const float *bias, const float *r, int32_t C) {
    for (int32_t c = 0; c < C; c += 8) {
        __m256 v = _mm256_add_ps(load_n(x + c, C - c), load_n(bias + c, C - c));
        store_n(row + c, _mm256_add_ps(v, load_n(r + c, C - c)), C - c);
    }
}

static void bias_act_row_avx2(float *y, const float *x, const float *bias, int act, int32_t N) {
    for (int32_t n = 0; n < N; n += 8)
        store_n(y + n, activate(_mm256_add_ps(load_n(x + n, N - n), load_n(bias + n, N - n)), act), N - n);
}

/* -- the matrix product: out (rows) = act(A @ W^T + bias) + residual ---------------
 * W is packed in panels of GEMM_NR output features, each (K, GEMM_NR)
 * contiguous, so the kernel reads it as one stream; a block of up to GEMM_MR
 * rows of A is packed k-major (ap[k * mr + r]), so each k step broadcasts mr
 * consecutive floats against GEMM_NV vectors of W: GEMM_NV mr accumulators in
 * registers, all K summed before the epilogue touches memory. */

/* acc (mr x GEMM_NR) = [acc +] ap (K x mr, k-major) @ bp (K x GEMM_NR) */
static ALWAYS_INLINE void gemm_block(const int mr, const float *ap, const float *bp, int32_t K, float *acc, int load) {
    __m256 c[GEMM_MR][GEMM_NV];
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 2
        for (int v = 0; v < GEMM_NV; v++)
            c[r][v] = load ? _mm256_load_ps(acc + r * GEMM_NR + 8 * v) : _mm256_setzero_ps();
#pragma GCC unroll 2
    for (int32_t k = 0; k < K; k++) {
        __m256 b[GEMM_NV];
#pragma GCC unroll 2
        for (int v = 0; v < GEMM_NV; v++) b[v] = _mm256_load_ps(bp + (size_t)k * GEMM_NR + 8 * v);
        const float *a = ap + (size_t)k * mr;
#pragma GCC unroll 6
        for (int r = 0; r < mr; r++) {
            __m256 av = _mm256_broadcast_ss(a + r);
#pragma GCC unroll 2
            for (int v = 0; v < GEMM_NV; v++) c[r][v] = _mm256_fmadd_ps(av, b[v], c[r][v]);
        }
    }
#pragma GCC unroll 6
    for (int r = 0; r < mr; r++)
#pragma GCC unroll 2
        for (int v = 0; v < GEMM_NV; v++) _mm256_store_ps(acc + r * GEMM_NR + 8 * v, c[r][v]);
}

/* One instance per row count, so that the accumulators stay in registers;
 * the epilogue is a separate pass over the (L1-resident) block, which keeps
 * its constants from competing with the accumulators for registers. */
static void gemm_block_rows(int mr, const float *ap, const float *bp, int32_t K, float *acc, int load) {
    switch (mr) {
    case 6: gemm_block(6, ap, bp, K, acc, load); break;
    case 5: gemm_block(5, ap, bp, K, acc, load); break;
    case 4: gemm_block(4, ap, bp, K, acc, load); break;
    case 3: gemm_block(3, ap, bp, K, acc, load); break;
    case 2: gemm_block(2, ap, bp, K, acc, load); break;
    default: gemm_block(1, ap, bp, K, acc, load); break;
    }
}

/* c[r] = act(acc[r] + bias) + res[r] for mr rows of the panel's first n
 * features (n <= GEMM_NR; fewer at the end of N) */
static void gemm_epilogue(const float *acc, int mr, float *c, int64_t ldc, const float *bias, const float *res,
                          int64_t ldr, int act, int32_t n) {
    __m256 bv[GEMM_NV];
    for (int v = 0; v < GEMM_NV; v++) bv[v] = 8 * v < n ? load_n(bias + 8 * v, n - 8 * v) : _mm256_setzero_ps();
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < GEMM_NV && 8 * v < n; v++) {
            __m256 y = activate(_mm256_add_ps(_mm256_load_ps(acc + r * GEMM_NR + 8 * v), bv[v]), act);
            if (res) y = _mm256_add_ps(y, load_n(res + r * ldr + 8 * v, n - 8 * v));
            store_n(c + r * ldc + 8 * v, y, n - 8 * v);
        }
}

/* r[i][j] -> r[j][i] for an 8 x 8 block in registers (24 shuffles). */
static ALWAYS_INLINE void transpose8(__m256 r[8]) {
    __m256 t[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        r[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        t[i] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x20);
        t[i + 4] = _mm256_permute2f128_ps(r[i], r[i + 4], 0x31);
    }
    for (int i = 0; i < 8; i++) r[i] = t[i];
}

/* dst[k * 6 + r] = src[r * lda + k] for 6 rows and 8 k, through a
 * transpose in registers (rows 6 and 7 zero) and stores of exactly 6 floats
 * (4 + 2), so that nothing is written past the block: about half the
 * instructions of copying one float at a time. */
_Static_assert(GEMM_MR == 6, "pack_rows_6x8 packs blocks of GEMM_MR rows");
static void pack_rows_6x8(float *dst, const float *src, int64_t lda) {
    __m256 r[8];
    for (int i = 0; i < 6; i++) r[i] = _mm256_loadu_ps(src + i * lda);
    r[6] = r[7] = _mm256_setzero_ps();
    transpose8(r);
    for (int k = 0; k < 8; k++) {
        _mm_storeu_ps(dst + k * 6, _mm256_castps256_ps128(r[k]));
        _mm_storel_pi((__m64 *)(dst + k * 6 + 4), _mm256_extractf128_ps(r[k], 1));
    }
}

/* Rows m0..m1 (at most TILE_ROWS) against panels p0..p1. The tile's rows are
 * packed once, block by block of GEMM_MR rows, each block k-major; then for
 * each panel, GEMM_KC steps of k at a time: that slice of the panel stays in
 * the L1 cache while every row block streams its slice of A past it from L2,
 * the partial sums kept in acc (TILE_ROWS x GEMM_NR). scratch:
 * cpu_linear_scratch floats. */
static void linear_tile_avx2(float *out, const float *inp, const float *wp, const float *bias, const float *res,
                             int act, int32_t m0, int32_t m1, int32_t p0, int32_t p1, int32_t K, int32_t N,
                             float *scratch) {
    float *acc = scratch, *apack = scratch + TILE_ROWS * GEMM_NR;
    for (int32_t m = m0; m < m1; m += GEMM_MR) {
        const int mr = m1 - m < GEMM_MR ? m1 - m : GEMM_MR;
        float *ap = apack + (size_t)(m - m0) * K;
        int32_t k = 0;
        if (mr == GEMM_MR)
            for (; k + 8 <= K; k += 8) pack_rows_6x8(ap + (size_t)k * GEMM_MR, inp + (size_t)m * K + k, K);
        for (int r = 0; r < mr; r++) {
            const float *row = inp + (size_t)(m + r) * K;
            for (int32_t kk = k; kk < K; kk++) ap[(size_t)kk * mr + r] = row[kk];
        }
    }
    for (int32_t p = p0; p < p1; p++) {
        const float *bp = wp + (size_t)p * K * GEMM_NR;
        for (int32_t k0 = 0; k0 < K; k0 += GEMM_KC) {
            const int32_t kc = K - k0 < GEMM_KC ? K - k0 : GEMM_KC;
            for (int32_t m = m0; m < m1; m += GEMM_MR) {
                const int mr = m1 - m < GEMM_MR ? m1 - m : GEMM_MR;
                gemm_block_rows(mr, apack + (size_t)(m - m0) * K + (size_t)k0 * mr, bp + (size_t)k0 * GEMM_NR, kc,
                                acc + (size_t)(m - m0) * GEMM_NR, k0 > 0);
            }
        }
        const int32_t n0 = p * GEMM_NR, n = N - n0 < GEMM_NR ? N - n0 : GEMM_NR;
        for (int32_t m = m0; m < m1; m += GEMM_MR) {
            const int mr = m1 - m < GEMM_MR ? m1 - m : GEMM_MR;
            gemm_epilogue(acc + (size_t)(m - m0) * GEMM_NR, mr, out + (size_t)m * N + n0, N, bias + n0,
                          res ? res + (size_t)m * N + n0 : NULL, N, act, n);
        }
    }
}

/* -- attention for one (sequence, head) -----------------------------------------
 * Keys are transposed into kt (HS, Lp), so a query's scores against 16 keys
 * are HS broadcast-FMAs with no horizontal sums; values stay (L, HS), so
 * P @ V is a broadcast of each probability against a row of V. ATT_QB
 * queries at a time share every load of K; P @ V goes ATT_PV_ROWS queries by
 * up to 4 vectors of V at a time, within the 16 registers. Scores stay in a
 * ATT_QB x Lp block, never the whole L x L matrix. Any head size that is a
 * multiple of 8. */
#define ATT_QB 6
#define ATT_PV_ROWS 3

/* out[r] = (s[r] @ v) inv[r] for G rows of scores s (row stride Lp) and CW
 * vectors of v (row stride HS); the first `rows` are stored, the others
 * (rows of the block past its last query) computed and dropped. */
static ALWAYS_INLINE void attention_pv(const int G, const int CW, float *out, int64_t ldo, const float *s,
                                       const float *v, const float *inv, int32_t L, int32_t Lp, int32_t HS,
                                       int rows) {
    __m256 acc[ATT_PV_ROWS][4];
    for (int r = 0; r < G; r++)
        for (int n = 0; n < CW; n++) acc[r][n] = _mm256_setzero_ps();
    for (int32_t j = 0; j < L; j++) {
        __m256 vj[4];
        for (int n = 0; n < CW; n++) vj[n] = _mm256_load_ps(v + (size_t)j * HS + 8 * n);
        for (int r = 0; r < G; r++) {
            __m256 pv = _mm256_broadcast_ss(s + (size_t)r * Lp + j);
            for (int n = 0; n < CW; n++) acc[r][n] = _mm256_fmadd_ps(pv, vj[n], acc[r][n]);
        }
    }
    for (int r = 0; r < rows; r++)
        for (int n = 0; n < CW; n++)
            _mm256_storeu_ps(out + r * ldo + 8 * n, _mm256_mul_ps(acc[r][n], _mm256_set1_ps(inv[r])));
}

/* Rows 0..qb-1 of the score block s (row stride Lp; query i0 + r) plus
 * their relative position bias (pos_bias NULL: none), turned into softmax
 * numerators in place; inv[r] = 1 / the row's sum. */
static void attention_softmax(float *s, float *inv, const float *pos_bias, int32_t i0, int qb, int32_t L, int32_t Lp) {
    for (int r = 0; r < qb; r++) {
        float *sr = s + (size_t)r * Lp;
        const float *pb = pos_bias ? pos_bias - (i0 + r) : NULL; /* pb[j]: key j's bias for this query */
        __m256 mx = _mm256_set1_ps(-INFINITY);
        for (int32_t j = 0; j < L; j += 8) {
            __m256 x = _mm256_load_ps(sr + j);
            if (pb) _mm256_store_ps(sr + j, x = _mm256_add_ps(x, _mm256_loadu_ps(pb + j)));
            mx = _mm256_max_ps(mx, _mm256_blendv_ps(_mm256_set1_ps(-INFINITY), x,
                                                    _mm256_castsi256_ps(tail_mask(L - j))));
        }
        __m256 m = _mm256_set1_ps(hmax(mx)), sum = _mm256_setzero_ps();
        for (int32_t j = 0; j < L; j += 8) {
            __m256 e = _mm256_and_ps(_mm256_castsi256_ps(tail_mask(L - j)),
                                     exp256(_mm256_sub_ps(_mm256_load_ps(sr + j), m)));
            _mm256_store_ps(sr + j, e);
            sum = _mm256_add_ps(sum, e);
        }
        inv[r] = 1.0f / hsum(sum);
    }
}

static int attention_head_avx2(float *out, const float *qkv, const float *bias, const float *pos_bias, int32_t t0,
                               int32_t L, int32_t h, int32_t NH, int32_t HS, float *scratch) {
    if (HS % 8 != 0) return 0;
    const int32_t NV = HS / 8, C = NH * HS, C3 = 3 * C, Lp = (L + 15) & ~15;
    const float scale = 1.0f / sqrtf((float)HS);
    float *kt = scratch;                /* (HS, Lp) */
    float *v = kt + (size_t)HS * Lp;    /* (L, HS) */
    float *s = v + (size_t)L * HS;      /* (ATT_QB, Lp) */
    float *q = s + (size_t)ATT_QB * Lp; /* (ATT_QB, HS) */
    const float *bq = bias ? bias + h * HS : NULL, *bk = bias ? bias + C + h * HS : NULL;
    const float *bv = bias ? bias + 2 * C + h * HS : NULL;
    for (int32_t j = 0; j < L; j++) {
        const float *row = qkv + (size_t)(t0 + j) * C3 + 2 * C + h * HS;
        for (int32_t n = 0; n < NV; n++) {
            __m256 x = _mm256_loadu_ps(row + 8 * n);
            _mm256_store_ps(v + (size_t)j * HS + 8 * n, bv ? _mm256_add_ps(x, _mm256_loadu_ps(bv + 8 * n)) : x);
        }
    }
    /* 8 keys x 8 dimensions at a time, transposed in registers; keys past
     * L are zero (their scores are never read) */
    for (int32_t j0 = 0; j0 < Lp; j0 += 8)
        for (int32_t n = 0; n < NV; n++) {
            const __m256 b = bk ? _mm256_loadu_ps(bk + 8 * n) : _mm256_setzero_ps();
            const float *key = qkv + (size_t)t0 * C3 + C + h * HS + 8 * n;
            __m256 r[8];
            for (int i = 0; i < 8; i++)
                r[i] = j0 + i < L ? _mm256_add_ps(_mm256_loadu_ps(key + (size_t)(j0 + i) * C3), b)
                                  : _mm256_setzero_ps();
            transpose8(r);
            for (int d = 0; d < 8; d++) _mm256_store_ps(kt + (size_t)(8 * n + d) * Lp + j0, r[d]);
        }

    for (int32_t i0 = 0; i0 < L; i0 += ATT_QB) {
        const int qb = L - i0 < ATT_QB ? L - i0 : ATT_QB;
        /* rows past qb repeat the block's first query: their scores are
         * finite and never stored */
        for (int r = 0; r < ATT_QB; r++) {
            const float *row = qkv + (size_t)(t0 + i0 + (r < qb ? r : 0)) * C3 + h * HS;
            for (int32_t n = 0; n < NV; n++) {
                __m256 x = _mm256_loadu_ps(row + 8 * n);
                if (bq) x = _mm256_add_ps(x, _mm256_loadu_ps(bq + 8 * n));
                _mm256_store_ps(q + r * HS + 8 * n, _mm256_mul_ps(x, _mm256_set1_ps(scale)));
            }
        }
        /* scores: ATT_QB x 16 keys per step */
        for (int32_t j = 0; j < Lp; j += 16) {
            __m256 a0[ATT_QB], a1[ATT_QB];
            for (int r = 0; r < ATT_QB; r++) a0[r] = a1[r] = _mm256_setzero_ps();
            for (int32_t d = 0; d < HS; d++) {
                __m256 k0 = _mm256_load_ps(kt + (size_t)d * Lp + j), k1 = _mm256_load_ps(kt + (size_t)d * Lp + j + 8);
                for (int r = 0; r < ATT_QB; r++) {
                    __m256 qv = _mm256_broadcast_ss(q + r * HS + d);
                    a0[r] = _mm256_fmadd_ps(qv, k0, a0[r]);
                    a1[r] = _mm256_fmadd_ps(qv, k1, a1[r]);
                }
            }
            for (int r = 0; r < ATT_QB; r++) {
                _mm256_store_ps(s + (size_t)r * Lp + j, a0[r]);
                _mm256_store_ps(s + (size_t)r * Lp + j + 8, a1[r]);
            }
        }
        /* softmax numerators in place; the 1/sum is applied to the output */
        float inv[ATT_QB];
        attention_softmax(s, inv, pos_bias, i0, qb, L, Lp);
        /* out = P @ V, in blocks of ATT_PV_ROWS queries by 4 vectors (the
         * last block of a head narrower) */
        for (int r0 = 0; r0 < qb; r0 += ATT_PV_ROWS) {
            const int rows = qb - r0 < ATT_PV_ROWS ? qb - r0 : ATT_PV_ROWS;
            float *o = out + (size_t)(t0 + i0 + r0) * C + h * HS;
            const float *sr = s + (size_t)r0 * Lp;
            int32_t n = 0;
            for (; n + 4 <= NV; n += 4)
                attention_pv(ATT_PV_ROWS, 4, o + 8 * n, C, sr, v + 8 * n, inv + r0, L, Lp, HS, rows);
            switch (NV - n) {
            case 3: attention_pv(ATT_PV_ROWS, 3, o + 8 * n, C, sr, v + 8 * n, inv + r0, L, Lp, HS, rows); break;
            case 2: attention_pv(ATT_PV_ROWS, 2, o + 8 * n, C, sr, v + 8 * n, inv + r0, L, Lp, HS, rows); break;
            case 1: attention_pv(ATT_PV_ROWS, 1, o + 8 * n, C, sr, v + 8 * n, inv + r0, L, Lp, HS, rows); break;
            default: break;
            }
        }
    }
    return 1;
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const cpu_isa cpu_isa_avx2 = {
    .name = "avx2",
    .batch_invariant = 1,
    .packed = 1,
    .nr = GEMM_NR,
    .tile_rows = TILE_ROWS,
    .layernorm_row = layernorm_row_avx2,
    .embed_row = embed_row_avx2,
    .bias_residual_row = bias_residual_row_avx2,
    .bias_act_row = bias_act_row_avx2,
    .linear_tile = linear_tile_avx2,
    .attention_head = attention_head_avx2,
};
#endif /* EMBER_X86_KERNELS */
