/* The CPU ops: portable C (the reference arithmetic, OpenBLAS for matrix
 * products) and AVX-512 kernels chosen at run time. See cpu_ops.h.
 *
 * Dimension letters as in model/model.h; in the kernels MR x NR is the
 * register tile of the matrix product (12 rows x 32 output features). */
#include "cpu_ops.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

/* ---- kernel choice ------------------------------------------------------------- */

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define EMBER_X86_KERNELS 1
#endif

static atomic_int kernels_choice = -1;

cpu_kernels cpu_kernels_get(void) {
    int k = atomic_load_explicit(&kernels_choice, memory_order_relaxed);
    if (k >= 0) return (cpu_kernels)k;
    k = CPU_KERNELS_GENERIC;
#ifdef EMBER_X86_KERNELS
    __builtin_cpu_init();
    const char *env = getenv("EMBER_CPU_KERNELS");
    int forced_generic = env && strcmp(env, "generic") == 0;
    /* every extension the kernels are compiled for (the target pragma
     * below): the compiler uses DQ, BW and VL instructions too (kmovd,
     * EVEX xmm16-31), which an AVX-512F-only processor (Xeon Phi) lacks */
    if (!forced_generic && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl"))
        k = CPU_KERNELS_AVX512;
#endif
    atomic_store_explicit(&kernels_choice, k, memory_order_relaxed);
    return (cpu_kernels)k;
}

const char *cpu_kernels_name(cpu_kernels k) { return k == CPU_KERNELS_AVX512 ? "avx512" : "generic"; }

/* ---- per-thread scratch -----------------------------------------------------------
 * The ops run on OpenMP's threads (and on whatever thread calls the library),
 * so their scratch lives with the thread: allocated on first use, grown when
 * a larger model needs more, freed when the thread ends. */

typedef struct {
    float *p;
    size_t cap;
} scratch_buf;

static pthread_key_t scratch_key;
static pthread_once_t scratch_once = PTHREAD_ONCE_INIT;

static void scratch_free(void *p) {
    scratch_buf *s = p;
    free(s->p);
    free(s);
}

static void scratch_key_make(void) { pthread_key_create(&scratch_key, scratch_free); }

/* At least n floats, 64-byte aligned; NULL when out of memory. */
static float *thread_scratch(size_t n) {
    pthread_once(&scratch_once, scratch_key_make);
    scratch_buf *s = pthread_getspecific(scratch_key);
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s || pthread_setspecific(scratch_key, s)) {
            free(s);
            return NULL;
        }
    }
    if (s->cap < n) {
        size_t cap = (n + 4095) & ~(size_t)4095;
        float *p = aligned_alloc(64, cap * sizeof(float));
        if (!p) return NULL;
        free(s->p);
        s->p = p;
        s->cap = cap;
    }
    return s->p;
}

/* The register tile of the AVX-512 matrix product: rows of A x output
 * features (two vectors); the portable path cuts its tiles to the same grid.
 * A tile (one thread's unit of work) is up to TILE_ROWS rows; its products
 * go GEMM_KC steps of k at a time (24 KB of weights, kept in L1). */
#define GEMM_MR 12
#define GEMM_NR 32
#define TILE_ROWS (8 * GEMM_MR)
#define GEMM_KC 192

/* Floats of scratch for one (sequence, head) of up to L tokens, either path. */
static size_t attention_scratch(int32_t L, int32_t HS) {
    size_t Lp = ((size_t)L + 31) & ~(size_t)31;
    return (size_t)HS * Lp + (size_t)L * HS + 8 * Lp + 8 * (size_t)HS + 64;
}

/* Scratch of one product: the partial sums and the packed rows of a tile
 * (AVX-512), or the tile's result before its epilogue (portable C). */
static size_t linear_scratch(int32_t K, int32_t N) {
    size_t a = (size_t)TILE_ROWS * GEMM_NR + (size_t)TILE_ROWS * K;
    size_t t = (size_t)TILE_ROWS * (((size_t)N + GEMM_NR - 1) / GEMM_NR * GEMM_NR);
    return a > t ? a : t;
}

int cpu_scratch_reserve(int32_t C, int32_t FF, int32_t HS, int32_t max_seqlen) {
    size_t need = linear_scratch(C, 3 * C);
    if (linear_scratch(C, FF) > need) need = linear_scratch(C, FF);
    if (linear_scratch(FF, C) > need) need = linear_scratch(FF, C);
    if (attention_scratch(max_seqlen, HS) > need) need = attention_scratch(max_seqlen, HS);
    if ((size_t)C * 2 > need) need = (size_t)C * 2;
    return thread_scratch(need) != NULL;
}

/* ---- portable C --------------------------------------------------------------------- */

static void layernorm_row(float *out, const float *x, const float *w, const float *b, float eps, int32_t C) {
    double mean = 0, var = 0;
    for (int32_t c = 0; c < C; c++) mean += x[c];
    mean /= C;
    for (int32_t c = 0; c < C; c++) {
        double d = x[c] - mean;
        var += d * d;
    }
    var /= C;
    float rstd = (float)(1.0 / sqrt(var + eps)), m = (float)mean;
    for (int32_t c = 0; c < C; c++) out[c] = (x[c] - m) * rstd * w[c] + b[c];
}

static float act_scalar(float v, int act) {
    switch (act) {
    case ACT_GELU_ERF: return 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2));
    case ACT_GELU_TANH: return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    case ACT_RELU: return v > 0 ? v : 0;
    default: return v;
    }
}

static void attention_head_generic(float *out, const float *qkv, const float *bias, int32_t t0, int32_t L,
                                   int32_t h, int32_t NH, int32_t HS, float *scratch) {
    const int32_t C = NH * HS;
    const float scale = 1.0f / sqrtf((float)HS);
    float *k = scratch, *v = k + (size_t)L * HS, *p = v + (size_t)L * HS, *q = p + L, *acc = q + HS;
    for (int32_t j = 0; j < L; j++) {
        const float *row = qkv + (size_t)(t0 + j) * 3 * C;
        for (int32_t d = 0; d < HS; d++) {
            k[j * HS + d] = row[C + h * HS + d] + (bias ? bias[C + h * HS + d] : 0.0f);
            v[j * HS + d] = row[2 * C + h * HS + d] + (bias ? bias[2 * C + h * HS + d] : 0.0f);
        }
    }
    for (int32_t i = 0; i < L; i++) {
        const float *row = qkv + (size_t)(t0 + i) * 3 * C + h * HS;
        for (int32_t d = 0; d < HS; d++) q[d] = (row[d] + (bias ? bias[h * HS + d] : 0.0f)) * scale;
        float mx = -INFINITY;
        for (int32_t j = 0; j < L; j++) {
            float dot = 0;
            const float *kj = k + j * HS;
            for (int32_t d = 0; d < HS; d++) dot += q[d] * kj[d];
            p[j] = dot;
            if (dot > mx) mx = dot;
        }
        float sum = 0;
        for (int32_t j = 0; j < L; j++) {
            p[j] = expf(p[j] - mx);
            sum += p[j];
        }
        float inv = 1.0f / sum;
        for (int32_t d = 0; d < HS; d++) acc[d] = 0;
        for (int32_t j = 0; j < L; j++) {
            const float *vj = v + j * HS;
            float pj = p[j] * inv;
            for (int32_t d = 0; d < HS; d++) acc[d] += pj * vj[d];
        }
        memcpy(out + (size_t)(t0 + i) * C + h * HS, acc, (size_t)HS * sizeof *acc);
    }
}

/* The matrix product on a tile (rows m0..m1, features n0..n1) with OpenBLAS
 * (single-threaded inside a parallel region) into tile (the residual may be
 * the output), then the epilogue into out. */
static void linear_tile_generic(float *out, const float *inp, const float *w, const float *bias, const float *res,
                                int act, int32_t m0, int32_t m1, int32_t n0, int32_t n1, int32_t K, int32_t N,
                                float *tile) {
    const int32_t tn = n1 - n0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m1 - m0, tn, K, 1.0f, inp + (size_t)m0 * K, K,
                w + (size_t)n0 * K, K, 0.0f, tile, tn);
    for (int32_t m = m0; m < m1; m++) {
        const float *y = tile + (size_t)(m - m0) * tn;
        float *o = out + (size_t)m * N;
        const float *r = res ? res + (size_t)m * N : NULL;
        for (int32_t n = n0; n < n1; n++) {
            float v = act_scalar(y[n - n0] + bias[n], act);
            o[n] = r ? v + r[n] : v;
        }
    }
}

/* ---- AVX-512 ---------------------------------------------------------------------------- */

#ifdef EMBER_X86_KERNELS
#include <immintrin.h>

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
 * linear_scratch(K) floats. */
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
                                          int32_t t0, int32_t L, int32_t h, int32_t NH, float *scratch) {
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
            __m512 mx = _mm512_set1_ps(-INFINITY);
            for (int32_t j = 0; j < L; j += 16)
                mx = _mm512_max_ps(mx, _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), tail_mask(L - j), sr + j));
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
static int attention_head_avx512(float *out, const float *qkv, const float *bias, int32_t t0, int32_t L, int32_t h,
                                 int32_t NH, int32_t HS, float *scratch) {
    switch (HS) {
    case 16: attention_block(1, 8, out, qkv, bias, t0, L, h, NH, scratch); return 1;
    case 32: attention_block(2, 8, out, qkv, bias, t0, L, h, NH, scratch); return 1;
    case 48: attention_block(3, 4, out, qkv, bias, t0, L, h, NH, scratch); return 1;
    case 64: attention_block(4, 4, out, qkv, bias, t0, L, h, NH, scratch); return 1;
    case 80: attention_block(5, 2, out, qkv, bias, t0, L, h, NH, scratch); return 1;
    case 96: attention_block(6, 2, out, qkv, bias, t0, L, h, NH, scratch); return 1;
    case 128: attention_block(8, 2, out, qkv, bias, t0, L, h, NH, scratch); return 1;
    default: return 0;
    }
}

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#endif /* EMBER_X86_KERNELS */

/* ---- row functions with the dispatch ------------------------------------------------ */

static int use_avx512(void) {
#ifdef EMBER_X86_KERNELS
    return cpu_kernels_get() == CPU_KERNELS_AVX512;
#else
    return 0;
#endif
}

static void layernorm_one(float *out, const float *x, const float *w, const float *b, float eps, int32_t C, int simd) {
#ifdef EMBER_X86_KERNELS
    if (simd) {
        layernorm_row_avx512(out, x, w, b, eps, C);
        return;
    }
#endif
    (void)simd;
    layernorm_row(out, x, w, b, eps, C);
}

/* ---- the ops that share a parallel region ---------------------------------------------- */

void embed_layernorm_rows_cpu(float *out, const int32_t *ids, const int32_t *type_ids, const int32_t *pos,
                              const float *word, const float *pos_emb, const float *type_emb, const float *ln_w,
                              const float *ln_b, float eps, int32_t T, int32_t C) {
    const int simd = use_avx512();
    float *row = thread_scratch((size_t)C);
#pragma omp for schedule(static)
    for (int32_t t = 0; t < T; t++) {
        const float *we = word + (size_t)ids[t] * C, *pe = pos_emb + (size_t)pos[t] * C,
                    *te = type_emb + (size_t)type_ids[t] * C;
#ifdef EMBER_X86_KERNELS
        if (simd) embed_row_avx512(row, we, pe, te, C);
        else
#endif
            for (int32_t c = 0; c < C; c++) row[c] = we[c] + pe[c] + te[c];
        layernorm_one(out + (size_t)t * C, row, ln_w, ln_b, eps, C, simd);
    }
}

void layernorm_cpu(float *out, const float *inp, const float *ln_w, const float *ln_b, float eps, int32_t T,
                   int32_t C) {
    const int simd = use_avx512();
#pragma omp for schedule(static)
    for (int32_t t = 0; t < T; t++) layernorm_one(out + (size_t)t * C, inp + (size_t)t * C, ln_w, ln_b, eps, C, simd);
}

size_t linear_packed_size(int32_t N, int32_t K) {
    if (use_avx512()) return (size_t)(N + GEMM_NR - 1) / GEMM_NR * GEMM_NR * (size_t)K;
    return (size_t)N * (size_t)K;
}

void linear_pack(float *packed, const float *w, int32_t N, int32_t K) {
    if (!use_avx512()) {
        memcpy(packed, w, (size_t)N * K * sizeof *w);
        return;
    }
    const int32_t P = (N + GEMM_NR - 1) / GEMM_NR;
    for (int32_t p = 0; p < P; p++)
        for (int32_t k = 0; k < K; k++)
            for (int32_t j = 0; j < GEMM_NR; j++) {
                int32_t n = p * GEMM_NR + j;
                packed[((size_t)p * K + k) * GEMM_NR + j] = n < N ? w[(size_t)n * K + k] : 0.0f;
            }
}

/* How a product is cut into tiles for the threads: blocks of up to
 * TILE_ROWS rows against all output features (the rows are packed once per
 * tile, so a tile should reach across as many panels as it can), and
 * narrower groups of panels while there are fewer than 4 tiles per thread,
 * so that short batches (one sentence: a few rows) still keep every core
 * busy, each reading only its share of W. */
typedef struct {
    int32_t rows, panels, n_row_tiles, n_panel_tiles;
} tile_plan;

static tile_plan tile_plan_make(int32_t T, int32_t N, int threads) {
    tile_plan tp;
    const int32_t P = (N + GEMM_NR - 1) / GEMM_NR;
    tp.rows = TILE_ROWS;
    tp.n_row_tiles = (T + tp.rows - 1) / tp.rows;
    int32_t g = P;
    while (g > 1 && tp.n_row_tiles * ((P + g - 1) / g) < 4 * threads) g = (g + 1) / 2;
    tp.panels = g;
    tp.n_panel_tiles = (P + g - 1) / g;
    return tp;
}

/* Rows m0..m1 (at most TILE_ROWS) against panels p0..p1, either path. */
static void linear_tile(float *out, const float *inp, const float *w_packed, const float *bias, const float *res,
                        int act, int32_t m0, int32_t m1, int32_t p0, int32_t p1, int32_t K, int32_t N, int simd,
                        float *scratch) {
#ifdef EMBER_X86_KERNELS
    if (simd) {
        linear_tile_avx512(out, inp, w_packed, bias, res, act, m0, m1, p0, p1, K, N, scratch);
        return;
    }
#endif
    (void)simd;
    const int32_t n0 = p0 * GEMM_NR, n1 = p1 * GEMM_NR < N ? p1 * GEMM_NR : N;
    linear_tile_generic(out, inp, w_packed, bias, res, act, m0, m1, n0, n1, K, N, scratch);
}

void linear_cpu(float *out, const float *inp, const float *w_packed, const float *bias, const float *res, int act,
                int32_t T, int32_t K, int32_t N) {
    const int simd = use_avx512();
    const tile_plan tp = tile_plan_make(T, N, omp_get_num_threads());
    const int32_t P = (N + GEMM_NR - 1) / GEMM_NR, n_tiles = tp.n_row_tiles * tp.n_panel_tiles;
    float *scratch = thread_scratch(linear_scratch(K, N));
#pragma omp for schedule(dynamic, 1)
    for (int32_t i = 0; i < n_tiles; i++) {
        const int32_t rt = i / tp.n_panel_tiles, pt = i % tp.n_panel_tiles;
        const int32_t m0 = rt * tp.rows, m1 = m0 + tp.rows < T ? m0 + tp.rows : T;
        const int32_t p0 = pt * tp.panels, p1 = p0 + tp.panels < P ? p0 + tp.panels : P;
        linear_tile(out, inp, w_packed, bias, res, act, m0, m1, p0, p1, K, N, simd, scratch);
    }
}

void linear_rows_cpu(float *out, const float *inp, const float *w_packed, const float *bias, const float *res,
                     int act, int32_t m0, int32_t m1, int32_t K, int32_t N) {
    const int simd = use_avx512();
    const int32_t P = (N + GEMM_NR - 1) / GEMM_NR;
    float *scratch = thread_scratch(linear_scratch(K, N));
    for (int32_t m = m0; m < m1; m += TILE_ROWS)
        linear_tile(out, inp, w_packed, bias, res, act, m, m + TILE_ROWS < m1 ? m + TILE_ROWS : m1, 0, P, K, N, simd,
                    scratch);
}

void layernorm_rows_cpu(float *out, const float *inp, const float *ln_w, const float *ln_b, float eps, int32_t m0,
                        int32_t m1, int32_t C) {
    const int simd = use_avx512();
    for (int32_t t = m0; t < m1; t++) layernorm_one(out + (size_t)t * C, inp + (size_t)t * C, ln_w, ln_b, eps, C, simd);
}

void attention_heads_cpu(float *out, const float *qkv, const float *bias, const int32_t *cu_seqlens, int32_t S,
                         int32_t NH, int32_t HS, const int32_t *seq_order) {
    const int simd = use_avx512();
    int32_t max_len = 0;
    for (int32_t s = 0; s < S; s++)
        if (cu_seqlens[s + 1] - cu_seqlens[s] > max_len) max_len = cu_seqlens[s + 1] - cu_seqlens[s];
    float *scratch = thread_scratch(attention_scratch(max_len, HS));
#pragma omp for schedule(dynamic, 1)
    for (int32_t sh = 0; sh < S * NH; sh++) {
        int32_t s = seq_order ? seq_order[sh / NH] : sh / NH, h = sh % NH;
        int32_t t0 = cu_seqlens[s], L = cu_seqlens[s + 1] - t0;
        if (L <= 0) continue;
#ifdef EMBER_X86_KERNELS
        if (simd && attention_head_avx512(out, qkv, bias, t0, L, h, NH, HS, scratch)) continue;
#endif
        attention_head_generic(out, qkv, bias, t0, L, h, NH, HS, scratch);
    }
}

void pool_rows_cpu(float *out, const float *hidden, const int32_t *cu_seqlens, int32_t S, int32_t C,
                   ember_pooling pooling, int normalize) {
    double *acc = (double *)thread_scratch((size_t)C * 2);
#pragma omp for schedule(static)
    for (int32_t s = 0; s < S; s++) {
        int32_t t0 = cu_seqlens[s], L = cu_seqlens[s + 1] - t0;
        float *o = out + (size_t)s * C;
        const float *h = hidden + (size_t)t0 * C;
        switch (pooling) {
        case EMBER_POOLING_MAX:
            for (int32_t c = 0; c < C; c++) o[c] = h[c];
            for (int32_t t = 1; t < L; t++)
                for (int32_t c = 0; c < C; c++)
                    if (h[(size_t)t * C + c] > o[c]) o[c] = h[(size_t)t * C + c];
            break;
        case EMBER_POOLING_MEAN:
        case EMBER_POOLING_MEAN_SQRT_LEN: {
            /* token by token (rows are contiguous), summed in double */
            for (int32_t c = 0; c < C; c++) acc[c] = 0;
            for (int32_t t = 0; t < L; t++)
                for (int32_t c = 0; c < C; c++) acc[c] += h[(size_t)t * C + c];
            double div = pooling == EMBER_POOLING_MEAN ? (double)L : sqrt((double)L);
            for (int32_t c = 0; c < C; c++) o[c] = (float)(acc[c] / div);
            break;
        }
        default: /* CLS */
            memcpy(o, h, (size_t)C * sizeof *o);
            break;
        }
        if (normalize) {
            double n2 = 0;
            for (int32_t c = 0; c < C; c++) n2 += (double)o[c] * o[c];
            double n = sqrt(n2);
            float inv = (float)(1.0 / (n > 1e-12 ? n : 1e-12));
            for (int32_t c = 0; c < C; c++) o[c] *= inv;
        }
    }
}

/* ---- the standalone ops (the CUDA kernels' twins) ------------------------------------------ */

void embed_layernorm_cpu(float *out, const int32_t *ids, const int32_t *type_ids, const int32_t *pos,
                         const float *word, const float *pos_emb, const float *type_emb, const float *ln_w,
                         const float *ln_b, float eps, int32_t T, int32_t C) {
#pragma omp parallel
    embed_layernorm_rows_cpu(out, ids, type_ids, pos, word, pos_emb, type_emb, ln_w, ln_b, eps, T, C);
}

void matmul_cpu(float *out, const float *inp, const float *w, int32_t T, int32_t K, int32_t N) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, N, K, 1.0f, inp, K, w, K, 0.0f, out, N);
}

void bias_residual_layernorm_cpu(float *out, const float *inp, const float *bias, const float *residual,
                                 const float *ln_w, const float *ln_b, float eps, int32_t T, int32_t C) {
#pragma omp parallel
    {
        const int simd = use_avx512();
        float *row = thread_scratch((size_t)C);
#pragma omp for schedule(static)
        for (int32_t t = 0; t < T; t++) {
            const float *x = inp + (size_t)t * C, *r = residual + (size_t)t * C;
#ifdef EMBER_X86_KERNELS
            if (simd) bias_residual_row_avx512(row, x, bias, r, C);
            else
#endif
                for (int32_t c = 0; c < C; c++) row[c] = x[c] + bias[c] + r[c];
            layernorm_one(out + (size_t)t * C, row, ln_w, ln_b, eps, C, simd);
        }
    }
}

void bias_act_cpu(float *out, const float *inp, const float *bias, activation act, int32_t T, int32_t N) {
#pragma omp parallel
    {
        const int simd = use_avx512();
#pragma omp for schedule(static)
        for (int32_t t = 0; t < T; t++) {
            const float *x = inp + (size_t)t * N;
            float *y = out + (size_t)t * N;
#ifdef EMBER_X86_KERNELS
            if (simd) {
                bias_act_row_avx512(y, x, bias, (int)act, N);
                continue;
            }
#endif
            for (int32_t n = 0; n < N; n++) y[n] = act_scalar(x[n] + bias[n], (int)act);
        }
    }
}

void attention_cpu(float *out, const float *qkv, const float *bias, const int32_t *cu_seqlens, int32_t S,
                   int32_t max_seqlen, int32_t NH, int32_t HS) {
    (void)max_seqlen;
#pragma omp parallel
    attention_heads_cpu(out, qkv, bias, cu_seqlens, S, NH, HS, NULL);
}

void pool_cpu(float *out, const float *hidden, const int32_t *cu_seqlens, int32_t S, int32_t C, ember_pooling pooling,
              int normalize) {
#pragma omp parallel
    pool_rows_cpu(out, hidden, cu_seqlens, S, C, pooling, normalize);
}
