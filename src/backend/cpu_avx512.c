/* The AVX-512 CPU kernels (F, DQ, BW, VL), compiled for those instructions
 * only here and entered only on a processor that has all four (cpu_ops.c).
 *
 * Every product sums each output over k in one fixed order (GEMM_KC blocks
 * of k, each in order), whatever the rows beside it, and attention works on
 * one (sequence, head) at a time: a text gets the same bits in any batch.
 *
 * In the matrix product MR x NR is the register tile (12 rows x 32 output
 * features, two vectors); a tile (one thread's unit of work) is up to
 * TILE_ROWS rows; its products go GEMM_KC steps of k at a time (24 KB of
 * weights, kept in L1). */
#include <math.h>
#include <stdint.h>

#include "cpu_isa.h"
#include "cpu_ops.h"

#ifdef EMBER_X86_KERNELS
#include <immintrin.h>

#define GEMM_MR 12
#define GEMM_NR 32
#define TILE_ROWS (8 * GEMM_MR)
#define GEMM_KC 192
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma"))),            \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512dq,avx512vl,avx512bw,avx2,fma")
#endif

#define ALWAYS_INLINE inline __attribute__((always_inline))

static ALWAYS_INLINE __mmask16 tail_mask(int32_t n) { /* the first min(n, 16) lanes */
    return n >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (n > 0 ? n : 0)) - 1u);
}

/* e^x to about 1 ulp: x = n ln2 + r, |r| <= ln2/2, Cephes' expf polynomial
 * for e^r, then scaling by 2^n (vscalefps handles underflow to 0). */
static ALWAYS_INLINE __m512 exp512(__m512 x) {
    /* below -87.33 the result would be subnormal: 0 instead, since
     * arithmetic on subnormals takes microcode assists (~100x slower) */
    const __mmask16 normal = _mm512_cmp_ps_mask(x, _mm512_set1_ps(-87.33654475f), _CMP_GE_OQ);
    x = _mm512_max_ps(_mm512_min_ps(x, _mm512_set1_ps(88.3762626647949f)), _mm512_set1_ps(-87.33654475f));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
    return _mm512_maskz_mov_ps(normal, _mm512_scalef_ps(p, n));
}

/* GELU with the exact erf: 0.5 x (1 + erf(x / sqrt 2)). 1 + erf(z) is
 * computed as erfc(-z) for z < 0 and 2 - erfc(z) otherwise, erfc by the
 * Chebyshev fit of Numerical Recipes (relative error < 1.2e-7), so the result
 * is within about 1 ulp of the exact value over the whole range (checked
 * against a float64 reference on a dense grid; PyTorch's own vectorised erf
 * is within 1.5e-7). */
static ALWAYS_INLINE __m512 gelu_erf512(__m512 x) {
    __m512 z = _mm512_mul_ps(_mm512_abs_ps(x), _mm512_set1_ps(0.70710678118654752f));
    /* t = 1 / (1 + z/2): a 14-bit reciprocal and one Newton step (24 bits)
     * cost a fifth of a division */
    __m512 den = _mm512_fmadd_ps(z, _mm512_set1_ps(0.5f), _mm512_set1_ps(1.0f));
    __m512 t = _mm512_rcp14_ps(den);
    t = _mm512_mul_ps(t, _mm512_fnmadd_ps(den, t, _mm512_set1_ps(2.0f)));
    __m512 p = _mm512_set1_ps(0.17087277f);
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.82215223f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.48851587f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.13520398f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.27886807f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-0.18628806f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.09678418f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(0.37409196f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(1.00002368f));
    p = _mm512_fmadd_ps(p, t, _mm512_set1_ps(-1.26551223f));
    /* erfc(z) < 1e-36 past z = 9: 0, which keeps every value normal */
    __m512 erfc = _mm512_maskz_mul_ps(_mm512_cmp_ps_mask(z, _mm512_set1_ps(9.0f), _CMP_LE_OQ), t,
                                      exp512(_mm512_fnmadd_ps(z, z, p)));
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 one_plus_erf = _mm512_mask_mov_ps(_mm512_sub_ps(_mm512_set1_ps(2.0f), erfc), neg, erfc);
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), one_plus_erf);
}

/* 0.5 x (1 + tanh(u)), tanh(u) = 1 - 2 / (e^(2u) + 1) */
static ALWAYS_INLINE __m512 gelu_tanh512(__m512 x) {
    __m512 x3 = _mm512_mul_ps(_mm512_mul_ps(x, x), x);
    __m512 u = _mm512_mul_ps(_mm512_set1_ps(0.7978845608028654f), _mm512_fmadd_ps(x3, _mm512_set1_ps(0.044715f), x));
    __m512 e = exp512(_mm512_add_ps(u, u));
    __m512 th = _mm512_sub_ps(_mm512_set1_ps(1.0f),
                              _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, _mm512_set1_ps(1.0f))));
    return _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(0.5f), x), _mm512_add_ps(_mm512_set1_ps(1.0f), th));
}

/* Mean and variance in float with 16 partial sums, two passes (as the
 * reference: subtract the mean before squaring). */
static void layernorm_row_avx512(float *out, const float *x, const float *w, const float *b, float eps, int32_t C) {
    __m512 s = _mm512_setzero_ps();
    for (int32_t c = 0; c < C; c += 16) s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(tail_mask(C - c), x + c));
    float mean = _mm512_reduce_add_ps(s) / (float)C;
    __m512 mv = _mm512_set1_ps(mean), q = _mm512_setzero_ps();
    for (int32_t c = 0; c < C; c += 16) {
        __mmask16 k = tail_mask(C - c);
        __m512 d = _mm512_maskz_sub_ps(k, _mm512_maskz_loadu_ps(k, x + c), mv);
        q = _mm512_fmadd_ps(d, d, q);
    }
    float var = _mm512_reduce_add_ps(q) / (float)C;
    __m512 rstd = _mm512_set1_ps(1.0f / sqrtf(var + eps));
    for (int32_t c = 0; c < C; c += 16) {
        __mmask16 k = tail_mask(C - c);
        __m512 d = _mm512_mul_ps(_mm512_sub_ps(_mm512_maskz_loadu_ps(k, x + c), mv), rstd);
        __m512 y = _mm512_fmadd_ps(d, _mm512_maskz_loadu_ps(k, w + c), _mm512_maskz_loadu_ps(k, b + c));
        _mm512_mask_storeu_ps(out + c, k, y);
    }
}

static void embed_row_avx512(float *row, const float *we, const float *pe, const float *te, int32_t C) {
    for (int32_t c = 0; c < C; c += 16) {
        __mmask16 k = tail_mask(C - c);
        __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(k, we + c), _mm512_maskz_loadu_ps(k, pe + c));
        _mm512_mask_storeu_ps(row + c, k, _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, te + c)));
    }
}

static void bias_residual_row_avx512(float *row, const float *x, const float *bias, const float *r, int32_t C) {
    for (int32_t c = 0; c < C; c += 16) {
        __mmask16 k = tail_mask(C - c);
        __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(k, x + c), _mm512_maskz_loadu_ps(k, bias + c));
        _mm512_mask_storeu_ps(row + c, k, _mm512_add_ps(v, _mm512_maskz_loadu_ps(k, r + c)));
    }
}

static void bias_act_row_avx512(float *y, const float *x, const float *bias, int act, int32_t N) {
    for (int32_t n = 0; n < N; n += 16) {
        __mmask16 k = tail_mask(N - n);
        __m512 v = _mm512_add_ps(_mm512_maskz_loadu_ps(k, x + n), _mm512_maskz_loadu_ps(k, bias + n));
        switch (act) {
        case ACT_GELU_ERF: v = gelu_erf512(v); break;
        case ACT_GELU_TANH: v = gelu_tanh512(v); break;
        case ACT_RELU: v = _mm512_max_ps(v, _mm512_setzero_ps()); break;
        default: break;
        }
        _mm512_mask_storeu_ps(y + n, k, v);
    }
}

/* -- the matrix product: out (rows) = act(A @ W^T + bias) + residual ---------------
 * W is packed in panels of 32 output features, each (K, 32) contiguous, so the
 * kernel reads it as one stream; a block of up to 12 rows of A is packed
 * k-major (ap[k * mr + r]), so each k step broadcasts mr consecutive floats
 * against two vectors of W: 2 mr accumulators in registers, all K summed
 * before the epilogue touches memory. */

/* acc (mr x 32) = [acc +] ap (K x mr, k-major) @ bp (K x 32) */
static ALWAYS_INLINE void gemm_block(const int mr, const float *ap, const float *bp, int32_t K, float *acc, int load) {
    __m512 acc0[GEMM_MR], acc1[GEMM_MR];
#pragma GCC unroll 12
    for (int r = 0; r < mr; r++) {
        acc0[r] = load ? _mm512_load_ps(acc + r * GEMM_NR) : _mm512_setzero_ps();
        acc1[r] = load ? _mm512_load_ps(acc + r * GEMM_NR + 16) : _mm512_setzero_ps();
    }
#pragma GCC unroll 2
    for (int32_t k = 0; k < K; k++) {
        __m512 b0 = _mm512_load_ps(bp + (size_t)k * GEMM_NR), b1 = _mm512_load_ps(bp + (size_t)k * GEMM_NR + 16);
        const float *a = ap + (size_t)k * mr;
#pragma GCC unroll 12
        for (int r = 0; r < mr; r++) {
            __m512 av = _mm512_set1_ps(a[r]);
            acc0[r] = _mm512_fmadd_ps(av, b0, acc0[r]);
            acc1[r] = _mm512_fmadd_ps(av, b1, acc1[r]);
        }
    }
#pragma GCC unroll 12
    for (int r = 0; r < mr; r++) {
        _mm512_store_ps(acc + r * GEMM_NR, acc0[r]);
        _mm512_store_ps(acc + r * GEMM_NR + 16, acc1[r]);
    }
}

/* One instance per row count, so that the accumulators stay in registers;
 * the epilogue is a separate pass over the (L1-resident) block, which keeps
 * its constants from competing with the accumulators for registers. */
static void gemm_block_rows(int mr, const float *ap, const float *bp, int32_t K, float *acc, int load) {
    switch (mr) {
    case 12: gemm_block(12, ap, bp, K, acc, load); break;
    case 11: gemm_block(11, ap, bp, K, acc, load); break;
    case 10: gemm_block(10, ap, bp, K, acc, load); break;
    case 9: gemm_block(9, ap, bp, K, acc, load); break;
    case 8: gemm_block(8, ap, bp, K, acc, load); break;
    case 7: gemm_block(7, ap, bp, K, acc, load); break;
    case 6: gemm_block(6, ap, bp, K, acc, load); break;
    case 5: gemm_block(5, ap, bp, K, acc, load); break;
    case 4: gemm_block(4, ap, bp, K, acc, load); break;
    case 3: gemm_block(3, ap, bp, K, acc, load); break;
    case 2: gemm_block(2, ap, bp, K, acc, load); break;
    default: gemm_block(1, ap, bp, K, acc, load); break;
    }
}

/* c[r] = act(acc[r] + bias) + res[r] for mr rows of up to 32 features */
static void gemm_epilogue(const float *acc, int mr, float *c, int64_t ldc, const float *bias, const float *res,
                          int64_t ldr, int act, __mmask16 k0, __mmask16 k1) {
    const __m512 bias0 = _mm512_maskz_loadu_ps(k0, bias), bias1 = _mm512_maskz_loadu_ps(k1, bias + 16);
    for (int r = 0; r < mr; r++) {
        __m512 v0 = _mm512_add_ps(_mm512_load_ps(acc + r * GEMM_NR), bias0);
        __m512 v1 = _mm512_add_ps(_mm512_load_ps(acc + r * GEMM_NR + 16), bias1);
        switch (act) {
        case ACT_GELU_ERF: v0 = gelu_erf512(v0), v1 = gelu_erf512(v1); break;
        case ACT_GELU_TANH: v0 = gelu_tanh512(v0), v1 = gelu_tanh512(v1); break;
        case ACT_RELU: v0 = _mm512_max_ps(v0, _mm512_setzero_ps()), v1 = _mm512_max_ps(v1, _mm512_setzero_ps()); break;
        default: break;
        }
        if (res) {
            v0 = _mm512_add_ps(v0, _mm512_maskz_loadu_ps(k0, res + r * ldr));
            v1 = _mm512_add_ps(v1, _mm512_maskz_loadu_ps(k1, res + r * ldr + 16));
        }
        _mm512_mask_storeu_ps(c + r * ldc, k0, v0);
        _mm512_mask_storeu_ps(c + r * ldc + 16, k1, v1);
    }
}

/* r[i][j] -> r[j][i] for a 16 x 16 block in registers (64 shuffles). */
static ALWAYS_INLINE void transpose16(__m512 r[16]) {
    __m512 t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        r[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        r[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 16; i += 8) {
        for (int j = 0; j < 4; j++) {
            t[i + j] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0x88);
            t[i + j + 4] = _mm512_shuffle_f32x4(r[i + j], r[i + j + 4], 0xdd);
        }
    }
    for (int j = 0; j < 8; j++) {
        r[j] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0x88);
        r[j + 8] = _mm512_shuffle_f32x4(t[j], t[j + 8], 0xdd);
    }
}

/* dst[k * 12 + r] = src[r * lda + k] for 12 rows and 16 k, through a
 * transpose in registers (rows 12..15 zero) and 16 stores of 12 floats:
 * about a quarter of the instructions of copying one float at a time. */
static void pack_rows_12x16(float *dst, const float *src, int64_t lda) {
    __m512 r[16];
    for (int i = 0; i < 12; i++) r[i] = _mm512_loadu_ps(src + i * lda);
    for (int i = 12; i < 16; i++) r[i] = _mm512_setzero_ps();
    transpose16(r);
    for (int k = 0; k < 16; k++) _mm512_mask_storeu_ps(dst + k * GEMM_MR, 0x0FFF, r[k]);
}

/* Rows m0..m1 (at most TILE_ROWS) against panels p0..p1. The tile's rows are
 * packed once, block by block of GEMM_MR rows, each block k-major; then for
 * each panel, GEMM_KC steps of k at a time: that slice of the panel (24 KB)
 * stays in the L1 cache while every row block streams its slice of A past
 * it from L2, the partial sums kept in acc (TILE_ROWS x 32). scratch:
 * cpu_linear_scratch floats. */
static void linear_tile_avx512(float *out, const float *inp, const float *wp, const float *bias, const float *res,
                               int act, int32_t m0, int32_t m1, int32_t p0, int32_t p1, int32_t K, int32_t N,
                               float *scratch) {
    float *acc = scratch, *apack = scratch + TILE_ROWS * GEMM_NR;
    for (int32_t m = m0; m < m1; m += GEMM_MR) {
        const int mr = m1 - m < GEMM_MR ? m1 - m : GEMM_MR;
        float *ap = apack + (size_t)(m - m0) * K;
        int32_t k = 0;
        if (mr == GEMM_MR)
            for (; k + 16 <= K; k += 16) pack_rows_12x16(ap + (size_t)k * GEMM_MR, inp + (size_t)m * K + k, K);
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
        const int32_t n0 = p * GEMM_NR;
        for (int32_t m = m0; m < m1; m += GEMM_MR) {
            const int mr = m1 - m < GEMM_MR ? m1 - m : GEMM_MR;
            gemm_epilogue(acc + (size_t)(m - m0) * GEMM_NR, mr, out + (size_t)m * N + n0, N, bias + n0,
                          res ? res + (size_t)m * N + n0 : NULL, N, act, tail_mask(N - n0), tail_mask(N - n0 - 16));
        }
    }
}

/* -- attention for one (sequence, head) -----------------------------------------
 * Keys are transposed into kt (HS, Lp), so a query's scores against 32 keys
 * are HS broadcast-FMAs with no horizontal sums; values stay (L, HS), so
 * P @ V is a broadcast of each probability against a row of V. QB queries
 * at a time share every load of K and V. Scores stay in a QB x Lp block
 * (the L2 cache for 512 tokens), never the whole L x L matrix. */
static ALWAYS_INLINE void attention_block(const int NV, const int QB, float *out, const float *qkv, const float *bias,
                                          const float *pos_bias, int32_t t0, int32_t L, int32_t h, int32_t NH,
                                          float *scratch) {
    const int32_t HS = NV * 16, C = NH * HS, C3 = 3 * C, Lp = (L + 31) & ~31;
    const float scale = 1.0f / sqrtf((float)HS);
    float *kt = scratch;               /* (HS, Lp) */
    float *v = kt + (size_t)HS * Lp;   /* (L, HS) */
    float *s = v + (size_t)L * HS;     /* (QB, Lp) */
    float *q = s + (size_t)QB * Lp;    /* (QB, HS) */
    __m512 bk[8], bv[8], bq[8];
    for (int n = 0; n < NV; n++) {
        bq[n] = bias ? _mm512_loadu_ps(bias + h * HS + 16 * n) : _mm512_setzero_ps();
        bk[n] = bias ? _mm512_loadu_ps(bias + C + h * HS + 16 * n) : _mm512_setzero_ps();
        bv[n] = bias ? _mm512_loadu_ps(bias + 2 * C + h * HS + 16 * n) : _mm512_setzero_ps();
    }
    for (int32_t j = 0; j < L; j++) {
        const float *row = qkv + (size_t)(t0 + j) * C3 + h * HS;
        for (int n = 0; n < NV; n++)
            _mm512_store_ps(v + (size_t)j * HS + 16 * n, _mm512_add_ps(_mm512_loadu_ps(row + 2 * C + 16 * n), bv[n]));
    }
    /* 16 keys x 16 dimensions at a time, transposed in registers; keys past
     * L are zero (their scores are never read) */
    for (int32_t j0 = 0; j0 < Lp; j0 += 16) {
        for (int n = 0; n < NV; n++) {
            __m512 r[16];
            for (int i = 0; i < 16; i++)
                r[i] = j0 + i < L ? _mm512_add_ps(_mm512_loadu_ps(qkv + (size_t)(t0 + j0 + i) * C3 + C + h * HS + 16 * n),
                                                  bk[n])
                                  : _mm512_setzero_ps();
            transpose16(r);
            for (int d = 0; d < 16; d++) _mm512_store_ps(kt + (size_t)(16 * n + d) * Lp + j0, r[d]);
        }
    }

    for (int32_t i0 = 0; i0 < L; i0 += QB) {
        const int qb = L - i0 < QB ? L - i0 : QB;
        for (int r = 0; r < QB; r++) {
            const float *row = qkv + (size_t)(t0 + i0 + (r < qb ? r : 0)) * C3 + h * HS;
            for (int n = 0; n < NV; n++)
                _mm512_store_ps(q + r * HS + 16 * n,
                                _mm512_mul_ps(_mm512_add_ps(_mm512_loadu_ps(row + 16 * n), bq[n]), _mm512_set1_ps(scale)));
        }
        /* scores: QB x 32 keys per step */
        for (int32_t j = 0; j < Lp; j += 32) {
            __m512 a0[8], a1[8];
            for (int r = 0; r < QB; r++) a0[r] = a1[r] = _mm512_setzero_ps();
            for (int32_t d = 0; d < HS; d++) {
                __m512 k0 = _mm512_load_ps(kt + (size_t)d * Lp + j), k1 = _mm512_load_ps(kt + (size_t)d * Lp + j + 16);
                for (int r = 0; r < QB; r++) {
                    __m512 qv = _mm512_set1_ps(q[r * HS + d]);
                    a0[r] = _mm512_fmadd_ps(qv, k0, a0[r]);
                    a1[r] = _mm512_fmadd_ps(qv, k1, a1[r]);
                }
            }
            for (int r = 0; r < QB; r++) {
                _mm512_store_ps(s + (size_t)r * Lp + j, a0[r]);
                _mm512_store_ps(s + (size_t)r * Lp + j + 16, a1[r]);
            }
        }
        /* softmax numerators in place; the 1/sum is applied to the output */
        float inv[8];
        for (int r = 0; r < qb; r++) {
            float *sr = s + (size_t)r * Lp;
            const float *pb = pos_bias ? pos_bias - (i0 + r) : NULL; /* pb[j]: key j's bias for this query */
            __m512 mx = _mm512_set1_ps(-INFINITY);
            for (int32_t j = 0; j < L; j += 16) {
                const __mmask16 k = tail_mask(L - j);
                __m512 x = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), k, sr + j);
                if (pb) _mm512_mask_storeu_ps(sr + j, k, x = _mm512_add_ps(x, _mm512_maskz_loadu_ps(k, pb + j)));
                mx = _mm512_max_ps(mx, x);
            }
            __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(mx)), sum = _mm512_setzero_ps();
            for (int32_t j = 0; j < L; j += 16) {
                __mmask16 k = tail_mask(L - j);
                __m512 e = _mm512_maskz_mov_ps(k, exp512(_mm512_sub_ps(_mm512_load_ps(sr + j), m)));
                _mm512_store_ps(sr + j, e);
                sum = _mm512_add_ps(sum, e);
            }
            inv[r] = 1.0f / _mm512_reduce_add_ps(sum);
        }
        /* out = P @ V */
        __m512 acc[8][8];
        for (int r = 0; r < QB; r++)
            for (int n = 0; n < NV; n++) acc[r][n] = _mm512_setzero_ps();
        for (int32_t j = 0; j < L; j++) {
            __m512 vj[8];
            for (int n = 0; n < NV; n++) vj[n] = _mm512_load_ps(v + (size_t)j * HS + 16 * n);
            for (int r = 0; r < QB; r++) {
                __m512 pv = _mm512_set1_ps(s[(size_t)r * Lp + j]);
                for (int n = 0; n < NV; n++) acc[r][n] = _mm512_fmadd_ps(pv, vj[n], acc[r][n]);
            }
        }
        for (int r = 0; r < qb; r++) {
            float *o = out + (size_t)(t0 + i0 + r) * C + h * HS;
            for (int n = 0; n < NV; n++) _mm512_storeu_ps(o + 16 * n, _mm512_mul_ps(acc[r][n], _mm512_set1_ps(inv[r])));
        }
    }
}

/* Head sizes that are a multiple of 16 up to 128 (MiniLM 32, BERT 64, ...);
 * 0 when the generic code must do it. QB keeps QB * NV accumulators <= 16. */
static int attention_head_avx512(float *out, const float *qkv, const float *bias, const float *pos_bias, int32_t t0,
                                 int32_t L, int32_t h, int32_t NH, int32_t HS, float *scratch) {
    switch (HS) {
    case 16: attention_block(1, 8, out, qkv, bias, pos_bias, t0, L, h, NH, scratch); return 1;
    case 32: attention_block(2, 8, out, qkv, bias, pos_bias, t0, L, h, NH, scratch); return 1;
    case 48: attention_block(3, 4, out, qkv, bias, pos_bias, t0, L, h, NH, scratch); return 1;
    case 64: attention_block(4, 4, out, qkv, bias, pos_bias, t0, L, h, NH, scratch); return 1;
    case 80: attention_block(5, 2, out, qkv, bias, pos_bias, t0, L, h, NH, scratch); return 1;
    case 96: attention_block(6, 2, out, qkv, bias, pos_bias, t0, L, h, NH, scratch); return 1;
    case 128: attention_block(8, 2, out, qkv, bias, pos_bias, t0, L, h, NH, scratch); return 1;
    default: return 0;
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const cpu_isa cpu_isa_avx512 = {
    .name = "avx512",
    .batch_invariant = 1,
    .packed = 1,
    .nr = GEMM_NR,
    .tile_rows = TILE_ROWS,
    .layernorm_row = layernorm_row_avx512,
    .embed_row = embed_row_avx512,
    .bias_residual_row = bias_residual_row_avx512,
    .bias_act_row = bias_act_row_avx512,
    .linear_tile = linear_tile_avx512,
    .attention_head = attention_head_avx512,
};
#endif /* EMBER_X86_KERNELS */
