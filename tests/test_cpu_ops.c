/* The CPU ops (src/backend/cpu_ops.c) on odd shapes against plain float64
 * references: sizes that are not multiples of the vector widths (16 for
 * AVX-512, 8 for AVX2), the register tiles (12 x 32, 6 x 16), the k blocks
 * (192, 256) or the row tiles (96, 48), head sizes the SIMD attention
 * handles and ones it leaves to portable C, sequences of 1..512 tokens.
 * Inputs and outputs are allocated to their exact size, followed by guard
 * values that must stay untouched (and under -DEMBER_SANITIZE=ON,
 * AddressSanitizer sees every stray read).
 *
 * Every test runs once per kernel family, each in a test of its own, skipped
 * where the processor lacks the family's instructions. On a batch-invariant
 * family (the SIMD ones) a row's result must not depend on the rest of its
 * batch, bit for bit. */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu_ops.h"
#include "test_util.h"

#define GUARD 64
#define GUARD_VALUE 12345.0f

static uint64_t rng = 0x243F6A8885A308D3ull;
static float frand(void) { /* uniform in [-1, 1) */
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (float)((double)((rng * 0x2545F4914F6CDD1Dull) >> 40) / (double)(1ull << 23) - 1.0);
}

/* n floats followed by GUARD guard values */
static float *guarded(size_t n) {
    float *p = malloc((n + GUARD) * sizeof *p);
    cr_assert(p);
    for (size_t i = 0; i < n + GUARD; i++) p[i] = i < n ? frand() : GUARD_VALUE;
    return p;
}

static void check_guard(const float *p, size_t n, const char *what) {
    for (size_t i = n; i < n + GUARD; i++)
        cr_assert_eq(p[i], GUARD_VALUE, "%s: written past its end (element %zu of %zu)", what, i, n);
}

/* The family every op of the test runs. */
static cpu_kernels kern;

static void use_kernels(cpu_kernels k) {
    if (cpu_kernels_check(k) != EMBER_OK) cr_skip_test("%s", ember_last_error());
    kern = k;
}

/* Test `name` once per family: name_avx512, name_avx2, name_generic. */
#define TEST_EACH_FAMILY(name, fn)                                                                                    \
    TEST_SIMD_FAMILIES(name, fn)                                                                                      \
    Test(cpu_ops, name##_generic) {                                                                                   \
        use_kernels(CPU_KERNELS_GENERIC);                                                                             \
        fn();                                                                                                         \
    }
/* ... on the SIMD families only (the batch-invariant ones). */
#define TEST_SIMD_FAMILIES(name, fn)                                                                                  \
    Test(cpu_ops, name##_avx512) {                                                                                    \
        use_kernels(CPU_KERNELS_AVX512);                                                                              \
        fn();                                                                                                         \
    }                                                                                                                 \
    Test(cpu_ops, name##_avx2) {                                                                                      \
        use_kernels(CPU_KERNELS_AVX2);                                                                                \
        fn();                                                                                                         \
    }

/* |got - want| <= atol + rtol |want| everywhere; prints the first mismatch */
static void expect_close(const float *got, const double *want, size_t n, double atol, double rtol, const char *what) {
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (!(d <= atol + rtol * fabs(want[i])))
            cr_assert_fail("%s: element %zu: got %.9g, expected %.9g (|diff| %.3g > %.3g)", what, i, (double)got[i],
                           want[i], d, atol + rtol * fabs(want[i]));
    }
}

static double act_ref(double v, int act) {
    switch (act) {
    case ACT_GELU_ERF: return 0.5 * v * (1.0 + erf(v / sqrt(2.0)));
    case ACT_GELU_TANH: return 0.5 * v * (1.0 + tanh(0.7978845608028654 * (v + 0.044715 * v * v * v)));
    case ACT_RELU: return v > 0 ? v : 0;
    default: return v;
    }
}

/* ---- linear ---------------------------------------------------------------------- */

static float *pack(const float *w, int32_t N, int32_t K) {
    size_t n = linear_packed_size(N, K, kern);
    float *p = aligned_alloc(64, ((n + 15) & ~(size_t)15) * sizeof *p);
    cr_assert(p);
    linear_pack(p, w, N, K, kern);
    return p;
}

/* out = act(inp @ w^T + bias) + res, against float64, for every activation,
 * with and without a residual (aliased with the output, as the backend does) */
static void linear_case(int32_t T, int32_t K, int32_t N) {
    float *inp = guarded((size_t)T * K), *w = guarded((size_t)N * K), *bias = guarded((size_t)N);
    float *res = guarded((size_t)T * N), *out = guarded((size_t)T * N);
    float *wp = pack(w, N, K);
    double *want = malloc((size_t)T * N * sizeof *want), *dot = malloc((size_t)T * N * sizeof *dot);
    for (int32_t t = 0; t < T; t++)
        for (int32_t n = 0; n < N; n++) {
            double s = 0;
            for (int32_t k = 0; k < K; k++) s += (double)inp[(size_t)t * K + k] * w[(size_t)n * K + k];
            dot[(size_t)t * N + n] = s + bias[n];
        }
    const int acts[] = {CPU_ACT_NONE, ACT_GELU_ERF, ACT_GELU_TANH, ACT_RELU};
    char what[128];
    /* float32 sums of K products of values in [-1, 1) */
    const double atol = 2e-6 * sqrt((double)K) + 1e-6;
    for (size_t a = 0; a < sizeof acts / sizeof *acts; a++) {
        for (int with_res = 0; with_res < 2; with_res++) {
            float *o = with_res ? res : out;
            float *r0 = NULL;
            if (with_res) {
                r0 = malloc((size_t)T * N * sizeof *r0);
                memcpy(r0, res, (size_t)T * N * sizeof *r0);
            }
            for (size_t i = 0; i < (size_t)T * N; i++)
                want[i] = act_ref(dot[i], acts[a]) + (with_res ? (double)r0[i] : 0.0);
            linear_cpu(o, inp, wp, bias, with_res ? o : NULL, acts[a], T, K, N, kern);
            snprintf(what, sizeof what, "linear T=%d K=%d N=%d act=%d%s", T, K, N, acts[a],
                     with_res ? " +residual" : "");
            check_guard(o, (size_t)T * N, what);
            expect_close(o, want, (size_t)T * N, atol, 1e-5, what);
            if (with_res) {
                memcpy(res, r0, (size_t)T * N * sizeof *r0);
                free(r0);
            }
        }
    }
    check_guard(inp, (size_t)T * K, "linear input");
    free(inp), free(w), free(bias), free(res), free(out), free(wp), free(want), free(dot);
}

static void linear_shapes(void) {
    const int32_t Ts[] = {1, 2, 5, 6, 7, 11, 12, 13, 25, 47, 48, 49, 95, 96, 97, 131};
    const int32_t KNs[][2] = {{1, 1},    {3, 5},    {7, 9},     {16, 16},  {15, 17}, {17, 31},  {32, 33},
                              {64, 64},  {100, 70}, {191, 47},  {192, 96}, {193, 65}, {200, 100}, {255, 23},
                              {257, 40}, {384, 48}, {64, 384},  {385, 19}, {520, 8},  {40, 1030}};
    for (size_t i = 0; i < sizeof Ts / sizeof *Ts; i++)
        for (size_t j = 0; j < sizeof KNs / sizeof *KNs; j++) linear_case(Ts[i], KNs[j][0], KNs[j][1]);
}

TEST_EACH_FAMILY(linear_odd_shapes, linear_shapes)

/* The same inside a parallel region of several threads (the backend's
 * orphaned `omp for`), and row by row through linear_rows_cpu. */
static void linear_threads(void) {
    const int32_t T = 150, K = 200, N = 97;
    float *inp = guarded((size_t)T * K), *w = guarded((size_t)N * K), *bias = guarded((size_t)N);
    float *a = guarded((size_t)T * N), *b = guarded((size_t)T * N), *c = guarded((size_t)T * N);
    float *wp = pack(w, N, K);
    linear_cpu(a, inp, wp, bias, NULL, ACT_GELU_ERF, T, K, N, kern);
#pragma omp parallel num_threads(3)
    {
        cr_assert(cpu_scratch_reserve(K, N, 16, 16, kern));
        linear_cpu(b, inp, wp, bias, NULL, ACT_GELU_ERF, T, K, N, kern);
    }
#pragma omp parallel for num_threads(3) schedule(dynamic, 1)
    for (int32_t m = 0; m < T; m += 48)
        linear_rows_cpu(c, inp, wp, bias, NULL, ACT_GELU_ERF, m, m + 48 < T ? m + 48 : T, K, N, kern);
    check_guard(b, (size_t)T * N, "linear in a parallel region");
    check_guard(c, (size_t)T * N, "linear_rows_cpu");
    double *want = malloc((size_t)T * N * sizeof *want);
    for (size_t i = 0; i < (size_t)T * N; i++) want[i] = a[i];
    expect_close(b, want, (size_t)T * N, 1e-5, 1e-5, "linear, 3 threads vs 1");
    expect_close(c, want, (size_t)T * N, 1e-5, 1e-5, "linear_rows_cpu vs linear_cpu");
    free(inp), free(w), free(bias), free(a), free(b), free(c), free(wp), free(want);
}

TEST_EACH_FAMILY(linear_threads, linear_threads)

/* The SIMD families: a row's result is the same bits alone, in any batch,
 * on any number of threads. */
static void linear_batch_independent(void) {
    cr_assert(cpu_kernels_batch_invariant(kern), "%s is not marked batch-invariant", cpu_kernels_name(kern));
    const int32_t T = 131, K = 385, N = 70;
    float *inp = guarded((size_t)T * K), *w = guarded((size_t)N * K), *bias = guarded((size_t)N);
    float *all = guarded((size_t)T * N), *one = guarded((size_t)N), *par = guarded((size_t)T * N);
    float *wp = pack(w, N, K);
    linear_cpu(all, inp, wp, bias, NULL, ACT_GELU_ERF, T, K, N, kern);
#pragma omp parallel num_threads(4)
    linear_cpu(par, inp, wp, bias, NULL, ACT_GELU_ERF, T, K, N, kern);
    cr_assert(memcmp(all, par, (size_t)T * N * sizeof *all) == 0, "4 threads differ from 1");
    for (int32_t t = 0; t < T; t++) {
        linear_cpu(one, inp + (size_t)t * K, wp, bias, NULL, ACT_GELU_ERF, 1, K, N, kern);
        cr_assert(memcmp(one, all + (size_t)t * N, (size_t)N * sizeof *one) == 0, "row %d differs alone", t);
        if (t + 5 <= T) {
            float *five = guarded((size_t)5 * N);
            linear_cpu(five, inp + (size_t)t * K, wp, bias, NULL, ACT_GELU_ERF, 5, K, N, kern);
            cr_assert(memcmp(five, all + (size_t)t * N, (size_t)N * sizeof *one) == 0,
                      "row %d differs at the top of a batch of 5", t);
            free(five);
        }
    }
    free(inp), free(w), free(bias), free(all), free(one), free(par), free(wp);
}

TEST_SIMD_FAMILIES(linear_batch_independent, linear_batch_independent)

/* ---- activations, LayerNorm ----------------------------------------------------------- */

/* GELU (exact erf) and the tanh form on a dense grid, against float64:
 * within a few ulp, the reference semantics of PyTorch's nn.GELU. */
static void activations(void) {
    const int32_t N = 200003; /* odd: a masked tail */
    float *x = guarded((size_t)N), *y = guarded((size_t)N), *zero = calloc((size_t)N, sizeof *zero);
    for (int32_t i = 0; i < N; i++) x[i] = -12.0f + 24.0f * (float)i / (float)(N - 1);
    x[0] = -100.0f, x[1] = 100.0f, x[2] = 0.0f, x[3] = -0.0f, x[4] = 1e-30f, x[5] = -1e-30f;
    const int acts[] = {ACT_GELU_ERF, ACT_GELU_TANH, ACT_RELU};
    double *want = malloc((size_t)N * sizeof *want);
    for (size_t a = 0; a < 3; a++) {
        bias_act_cpu(y, x, zero, (activation)acts[a], 1, N, kern);
        check_guard(y, (size_t)N, "bias_act_cpu");
        for (int32_t i = 0; i < N; i++) want[i] = act_ref(x[i], acts[a]);
        char what[64];
        snprintf(what, sizeof what, "activation %d", acts[a]);
        expect_close(y, want, (size_t)N, 5e-7, 5e-7, what);
    }
    free(x), free(y), free(zero), free(want);
}

TEST_EACH_FAMILY(activations_match_float64, activations)

/* LayerNorm (biased variance, eps inside the square root), alone and after
 * bias + residual, for hidden sizes around the vector width. */
static void layernorms(void) {
    const int32_t Cs[] = {1, 7, 16, 17, 31, 64, 100, 384, 385, 768, 1024};
    const int32_t T = 5;
    for (size_t i = 0; i < sizeof Cs / sizeof *Cs; i++) {
        const int32_t C = Cs[i];
        float *x = guarded((size_t)T * C), *w = guarded((size_t)C), *b = guarded((size_t)C);
        float *bias = guarded((size_t)C), *r = guarded((size_t)T * C), *out = guarded((size_t)T * C);
        /* a large common offset: the mean must be taken out before squaring */
        for (size_t k = 0; k < (size_t)T * C; k++) x[k] = 3.0f + x[k];
        double *want = malloc((size_t)T * C * sizeof *want), *want2 = malloc((size_t)T * C * sizeof *want2);
        const float eps = 1e-12f;
        for (int pass = 0; pass < 2; pass++)
            for (int32_t t = 0; t < T; t++) {
                double mean = 0, var = 0, *dst = pass ? want2 : want;
                double v[2048];
                for (int32_t c = 0; c < C; c++) {
                    size_t k = (size_t)t * C + c;
                    v[c] = pass ? (double)x[k] + bias[c] + r[k] : (double)x[k];
                    mean += v[c];
                }
                mean /= C;
                for (int32_t c = 0; c < C; c++) var += (v[c] - mean) * (v[c] - mean);
                var /= C;
                for (int32_t c = 0; c < C; c++)
                    dst[(size_t)t * C + c] = (v[c] - mean) / sqrt(var + eps) * w[c] + b[c];
            }
        char what[64];
        layernorm_cpu(out, x, w, b, eps, T, C, kern);
        snprintf(what, sizeof what, "layernorm C=%d", C);
        check_guard(out, (size_t)T * C, what);
        expect_close(out, want, (size_t)T * C, C == 1 ? 1e-3 : 2e-5, 2e-5, what);
        bias_residual_layernorm_cpu(out, x, bias, r, w, b, eps, T, C, kern);
        snprintf(what, sizeof what, "bias_residual_layernorm C=%d", C);
        check_guard(out, (size_t)T * C, what);
        expect_close(out, want2, (size_t)T * C, C == 1 ? 1e-3 : 2e-5, 2e-5, what);
        free(x), free(w), free(b), free(bias), free(r), free(out), free(want), free(want2);
    }
}

TEST_EACH_FAMILY(layernorm_odd_sizes, layernorms)

/* ---- attention ------------------------------------------------------------------------------ */

/* softmax(q k^T / sqrt(HS) + rel) v per (sequence, head), q/k/v with their
 * bias; rel from MPNet's bucket table when rel_bias is not NULL */
static void attention_ref(double *out, const float *qkv, const float *bias, const float *rel_bias, const int32_t *cu,
                          int32_t S, int32_t NH, int32_t HS) {
    const int32_t C = NH * HS;
    double *p = malloc(600 * sizeof *p);
    for (int32_t s = 0; s < S; s++)
        for (int32_t h = 0; h < NH; h++) {
            const int32_t t0 = cu[s], L = cu[s + 1] - t0;
            for (int32_t i = 0; i < L; i++) {
                double mx = -INFINITY, sum = 0;
                for (int32_t j = 0; j < L; j++) {
                    double dot = 0;
                    for (int32_t d = 0; d < HS; d++) {
                        int32_t cq = h * HS + d, ck = C + h * HS + d;
                        dot += ((double)qkv[(size_t)(t0 + i) * 3 * C + cq] + bias[cq]) *
                               ((double)qkv[(size_t)(t0 + j) * 3 * C + ck] + bias[ck]);
                    }
                    p[j] = dot / sqrt((double)HS) + (rel_bias ? rel_bias[rel_bucket(j - i) * NH + h] : 0.0);
                    if (p[j] > mx) mx = p[j];
                }
                for (int32_t j = 0; j < L; j++) sum += p[j] = exp(p[j] - mx);
                for (int32_t d = 0; d < HS; d++) {
                    double acc = 0;
                    int32_t cv = 2 * C + h * HS + d;
                    for (int32_t j = 0; j < L; j++) acc += p[j] * ((double)qkv[(size_t)(t0 + j) * 3 * C + cv] + bias[cv]);
                    out[(size_t)(t0 + i) * C + h * HS + d] = acc / sum;
                }
            }
        }
    free(p);
}

/* MPNet's (REL_BUCKETS, NH) bias table, values in [-scale, scale) */
static float *rel_table(int32_t NH, float scale) {
    float *t = guarded((size_t)REL_BUCKETS * NH);
    for (size_t i = 0; i < (size_t)REL_BUCKETS * NH; i++) t[i] *= scale;
    return t;
}

static void attention_case(const int32_t *lens, int32_t S, int32_t NH, int32_t HS, float spread, int with_rel) {
    const int32_t C = NH * HS;
    int32_t cu[64];
    cu[0] = 0;
    for (int32_t s = 0; s < S; s++) cu[s + 1] = cu[s] + lens[s];
    const int32_t T = cu[S];
    float *qkv = guarded((size_t)T * 3 * C), *bias = guarded((size_t)3 * C), *out = guarded((size_t)T * C);
    float *rel = with_rel ? rel_table(NH, 3.0f) : NULL;
    for (size_t i = 0; i < (size_t)T * 3 * C; i++) qkv[i] *= spread; /* large scores: softmax must stay stable */
    double *want = malloc((size_t)T * C * sizeof *want);
    attention_ref(want, qkv, bias, rel, cu, S, NH, HS);
    char what[128];
    snprintf(what, sizeof what, "attention S=%d (first L=%d) NH=%d HS=%d spread %g%s", S, lens[0], NH, HS,
             (double)spread, with_rel ? " +relative bias" : "");
    attention_cpu(out, qkv, bias, rel, cu, S, 0, NH, HS, kern);
    check_guard(out, (size_t)T * C, what);
    check_guard(qkv, (size_t)T * 3 * C, what);
    if (rel) check_guard(rel, (size_t)REL_BUCKETS * NH, what);
    expect_close(out, want, (size_t)T * C, 2e-5 * spread * spread, 1e-4, what);
    free(qkv), free(bias), free(out), free(want), free(rel);
}

static void attentions(void) {
    /* 12 and 20: not a multiple of 8, left to portable C by every family */
    const int32_t HSs[] = {8, 12, 16, 20, 24, 32, 40, 48, 56, 64, 80, 96, 128};
    const int32_t Ls[] = {1, 2, 6, 7, 13, 15, 16, 17, 31, 32, 33, 63, 65, 100};
    for (size_t h = 0; h < sizeof HSs / sizeof *HSs; h++) {
        for (size_t l = 0; l < sizeof Ls / sizeof *Ls; l++) {
            const int32_t one[1] = {Ls[l]};
            attention_case(one, 1, 2, HSs[h], 1.0f, 0);
            attention_case(one, 1, 2, HSs[h], 1.0f, 1);
        }
        const int32_t mixed[] = {3, 1, 50, 17, 33, 2};
        attention_case(mixed, 6, 3, HSs[h], 1.0f, 0);
        attention_case(mixed, 6, 1, HSs[h], 4.0f, 0);
        attention_case(mixed, 6, 3, HSs[h], 1.0f, 1);
    }
    /* 512 and 129 tokens: every bucket, the logarithmic ones and both caps */
    const int32_t long_one[] = {512, 1, 129};
    attention_case(long_one, 3, 2, 64, 1.0f, 0);
    attention_case(long_one, 3, 1, 32, 1.0f, 0);
    attention_case(long_one, 3, 2, 64, 1.0f, 1);
    attention_case(long_one, 3, 3, 12, 1.0f, 1);
}

TEST_EACH_FAMILY(attention_odd_shapes, attentions)

/* The SIMD families: a sequence's attention output is the same bits alone
 * as packed among others, in any position, on any number of threads, with
 * MPNet's relative position bias or without. */
static void attention_batch_independent(void) {
    cr_assert(cpu_kernels_batch_invariant(kern), "%s is not marked batch-invariant", cpu_kernels_name(kern));
    const int32_t HSs[] = {16, 32, 56, 64, 80};
    for (int with_rel = 0; with_rel < 2; with_rel++)
        for (size_t h = 0; h < sizeof HSs / sizeof *HSs; h++) {
            const int32_t NH = 3, HS = HSs[h], C = NH * HS;
            const int32_t lens[] = {5, 70, 1, 33, 18};
            int32_t cu[6] = {0};
            for (int s = 0; s < 5; s++) cu[s + 1] = cu[s] + lens[s];
            const int32_t T = cu[5];
            float *qkv = guarded((size_t)T * 3 * C), *bias = guarded((size_t)3 * C), *all = guarded((size_t)T * C);
            float *par = guarded((size_t)T * C), *rel = with_rel ? rel_table(NH, 3.0f) : NULL;
            attention_cpu(all, qkv, bias, rel, cu, 5, 0, NH, HS, kern);
            int32_t order[5] = {1, 3, 4, 0, 2};
#pragma omp parallel num_threads(3)
            {
                cr_assert(cpu_scratch_reserve(C, C, HS, 70, kern));
                attention_heads_cpu(par, qkv, bias, rel, cu, 5, NH, HS, order, kern);
            }
            cr_assert(memcmp(all, par, (size_t)T * C * sizeof *all) == 0, "HS=%d%s: 3 threads, another order differ",
                      HS, with_rel ? " +relative bias" : "");
            for (int s = 0; s < 5; s++) {
                int32_t cu1[2] = {0, lens[s]};
                float *one = guarded((size_t)lens[s] * C);
                attention_cpu(one, qkv + (size_t)cu[s] * 3 * C, bias, rel, cu1, 1, 0, NH, HS, kern);
                cr_assert(memcmp(one, all + (size_t)cu[s] * C, (size_t)lens[s] * C * sizeof *one) == 0,
                          "HS=%d%s: sequence %d differs alone", HS, with_rel ? " +relative bias" : "", s);
                free(one);
            }
            free(qkv), free(bias), free(all), free(par), free(rel);
        }
}

TEST_SIMD_FAMILIES(attention_batch_independent, attention_batch_independent)

/* ---- embeddings, pooling ------------------------------------------------------------------------ */

static void embed_and_pool(void) {
    const int32_t Cs[] = {17, 64, 100};
    for (size_t i = 0; i < sizeof Cs / sizeof *Cs; i++) {
        const int32_t C = Cs[i], V = 11, P = 9, TV = 2, T = 9;
        float *word = guarded((size_t)V * C), *pos = guarded((size_t)P * C), *type = guarded((size_t)TV * C);
        float *w = guarded((size_t)C), *b = guarded((size_t)C), *out = guarded((size_t)T * C);
        int32_t ids[9] = {10, 0, 3, 3, 7, 1, 2, 9, 10}, types[9] = {0, 0, 0, 1, 1, 0, 1, 0, 1};
        int32_t pos_ids[9] = {0, 1, 2, 3, 4, 0, 1, 2, 8};
        embed_layernorm_cpu(out, ids, types, pos_ids, word, pos, type, w, b, 1e-5f, T, C, kern);
        check_guard(out, (size_t)T * C, "embed_layernorm_cpu");
        double *want = malloc((size_t)T * C * sizeof *want);
        for (int32_t t = 0; t < T; t++) {
            double v[128], mean = 0, var = 0;
            for (int32_t c = 0; c < C; c++) {
                v[c] = (double)word[(size_t)ids[t] * C + c] + pos[(size_t)pos_ids[t] * C + c] +
                       type[(size_t)types[t] * C + c];
                mean += v[c];
            }
            mean /= C;
            for (int32_t c = 0; c < C; c++) var += (v[c] - mean) * (v[c] - mean);
            var /= C;
            for (int32_t c = 0; c < C; c++) want[(size_t)t * C + c] = (v[c] - mean) / sqrt(var + 1e-5) * w[c] + b[c];
        }
        expect_close(out, want, (size_t)T * C, 2e-5, 2e-5, "embed_layernorm_cpu");
        /* pooling over sequences of 5 and 4 tokens */
        int32_t cu[3] = {0, 5, 9};
        float *pooled = guarded((size_t)2 * C);
        const ember_pooling modes[] = {EMBER_POOLING_CLS, EMBER_POOLING_MEAN, EMBER_POOLING_MAX,
                                       EMBER_POOLING_MEAN_SQRT_LEN};
        for (int m = 0; m < 4; m++)
            for (int norm = 0; norm < 2; norm++) {
                pool_cpu(pooled, out, cu, 2, C, modes[m], norm, kern);
                check_guard(pooled, (size_t)2 * C, "pool_cpu");
                double ref[2][128];
                for (int s = 0; s < 2; s++) {
                    int32_t L = cu[s + 1] - cu[s];
                    double n2 = 0;
                    for (int32_t c = 0; c < C; c++) {
                        double acc = modes[m] == EMBER_POOLING_MAX ? -INFINITY : 0;
                        for (int32_t t = cu[s]; t < cu[s + 1]; t++) {
                            double v = out[(size_t)t * C + c];
                            if (modes[m] == EMBER_POOLING_MAX) acc = v > acc ? v : acc;
                            else acc += v;
                            if (modes[m] == EMBER_POOLING_CLS) break;
                        }
                        if (modes[m] == EMBER_POOLING_MEAN) acc /= L;
                        if (modes[m] == EMBER_POOLING_MEAN_SQRT_LEN) acc /= sqrt((double)L);
                        ref[s][c] = acc;
                        n2 += acc * acc;
                    }
                    if (norm)
                        for (int32_t c = 0; c < C; c++) ref[s][c] /= sqrt(n2) > 1e-12 ? sqrt(n2) : 1e-12;
                }
                double flat[256];
                for (int s = 0; s < 2; s++)
                    for (int32_t c = 0; c < C; c++) flat[s * C + c] = ref[s][c];
                expect_close(pooled, flat, (size_t)2 * C, 1e-6, 1e-5, "pool_cpu");
            }
        free(word), free(pos), free(type), free(w), free(b), free(out), free(want), free(pooled);
    }
}

TEST_EACH_FAMILY(embeddings_and_pooling, embed_and_pool)

/* The AVX-512 kernels are compiled for F, DQ, BW and VL (and use
 * instructions of each): they may run only where all four are present, and
 * asking for them elsewhere is an error naming what is missing. */
Test(cpu_ops, avx512_only_with_every_extension_the_kernels_use) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    int all = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
              __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
    if (all) {
        cr_assert_eq(cpu_kernels_best(), CPU_KERNELS_AVX512, "a processor with AVX-512 F/DQ/BW/VL got %s",
                     cpu_kernels_name(cpu_kernels_best()));
        cr_assert_eq(cpu_kernels_check(CPU_KERNELS_AVX512), EMBER_OK);
    } else {
        cr_assert_neq(cpu_kernels_best(), CPU_KERNELS_AVX512, "AVX-512 kernels chosen without DQ, BW or VL");
        cr_assert_eq(cpu_kernels_check(CPU_KERNELS_AVX512), EMBER_ERR_UNSUPPORTED);
        cr_assert(strstr(ember_last_error(), "avx512"), "message: %s", ember_last_error());
    }
#else
    cr_assert_eq(cpu_kernels_best(), CPU_KERNELS_GENERIC);
#endif
    cr_assert_eq(cpu_kernels_check(CPU_KERNELS_GENERIC), EMBER_OK);
}

/* The AVX2 kernels are compiled for AVX2 and FMA, two separate feature bits:
 * they may run only where both are present, are the best family there
 * unless AVX-512 is, and asking for them elsewhere is an error naming what
 * is missing. */
Test(cpu_ops, avx2_only_with_avx2_and_fma) {
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    const int avx2 = __builtin_cpu_supports("avx2"), fma = __builtin_cpu_supports("fma");
    if (avx2 && fma) {
        cr_assert_eq(cpu_kernels_check(CPU_KERNELS_AVX2), EMBER_OK, "%s", ember_last_error());
        cr_assert(cpu_kernels_best() == CPU_KERNELS_AVX2 || cpu_kernels_best() == CPU_KERNELS_AVX512,
                  "a processor with AVX2 and FMA got %s", cpu_kernels_name(cpu_kernels_best()));
    } else {
        cr_assert_neq(cpu_kernels_best(), CPU_KERNELS_AVX2, "AVX2 kernels chosen without AVX2 or FMA");
        cr_assert_eq(cpu_kernels_check(CPU_KERNELS_AVX2), EMBER_ERR_UNSUPPORTED);
        const char *msg = ember_last_error();
        cr_assert(strstr(msg, "avx2"), "message: %s", msg);
        if (!fma) cr_assert(strstr(msg, "fma"), "message: %s", msg);
    }
#else
    cr_assert_eq(cpu_kernels_check(CPU_KERNELS_AVX2), EMBER_ERR_UNSUPPORTED);
#endif
    cr_assert_str_eq(cpu_kernels_name(CPU_KERNELS_AVX2), "avx2");
}
