/* The CPU ops: the choice of kernel family, per-thread scratch, and the ops
 * themselves, which cut the work among threads and hand each piece to the
 * family's kernels (cpu_isa.h). See cpu_ops.h. */
#include "cpu_ops.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "common/error.h"
#include "cpu_isa.h"

/* ---- kernel families ------------------------------------------------------------- */

static const cpu_isa *isa_of(cpu_kernels k) {
    switch (k) {
#ifdef EMBER_X86_KERNELS
    case CPU_KERNELS_AVX2: return &cpu_isa_avx2;
    case CPU_KERNELS_AVX512: return &cpu_isa_avx512;
#endif
    default: return &cpu_isa_generic;
    }
}

/* The instructions family k is compiled for that this processor lacks,
 * comma-separated into buf; "" when it has them all. */
static const char *missing_instructions(cpu_kernels k, char *buf, size_t cap) {
    buf[0] = '\0';
    if (k == CPU_KERNELS_GENERIC) return buf;
#ifdef EMBER_X86_KERNELS
    __builtin_cpu_init();
    /* every extension the family is compiled for: the AVX-512 compiler output
     * uses DQ, BW and VL instructions too (kmovd, EVEX xmm16-31), which an
     * AVX-512F-only processor (Xeon Phi) lacks; AVX2 and FMA are separate
     * feature bits (AMD's Piledriver has FMA without AVX2) */
    struct {
        const char *name;
        int have;
    } need[4];
    int count = 0;
#define NEED(feature) (need[count].name = feature, need[count++].have = __builtin_cpu_supports(feature))
    if (k == CPU_KERNELS_AVX2) NEED("avx2"), NEED("fma");
    else NEED("avx512f"), NEED("avx512dq"), NEED("avx512bw"), NEED("avx512vl");
#undef NEED
    size_t n = 0;
    for (int i = 0; i < count; i++)
        if (!need[i].have) n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s", n ? ", " : "", need[i].name);
#else
    snprintf(buf, cap, "an x86-64 processor (ember's SIMD kernels are x86-64 only)");
#endif
    return buf;
}

ember_status cpu_kernels_check(cpu_kernels k) {
    if ((int)k < 0 || k >= CPU_KERNELS_COUNT)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "unknown CPU kernel family %d", (int)k);
    char missing[256];
    if (*missing_instructions(k, missing, sizeof missing))
        return ember_fail(EMBER_ERR_UNSUPPORTED, "the %s CPU kernels need instructions this processor lacks: %s",
                          cpu_kernels_name(k), missing);
    return EMBER_OK;
}

cpu_kernels cpu_kernels_best(void) {
    static atomic_int best = -1;
    int k = atomic_load_explicit(&best, memory_order_relaxed);
    if (k >= 0) return (cpu_kernels)k;
    char missing[256];
    for (k = CPU_KERNELS_COUNT - 1; k > CPU_KERNELS_GENERIC; k--)
        if (!*missing_instructions((cpu_kernels)k, missing, sizeof missing)) break;
    atomic_store_explicit(&best, k, memory_order_relaxed);
    return (cpu_kernels)k;
}

const char *cpu_kernels_name(cpu_kernels k) {
    return (int)k >= 0 && k < CPU_KERNELS_COUNT ? isa_of(k)->name : "unknown";
}

int cpu_kernels_batch_invariant(cpu_kernels k) { return isa_of(k)->batch_invariant; }

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

/* The relative position bias of one (sequence, head) by offset, before a
 * family's own scratch: 2L - 1 offsets and 32 zeros for vector tails,
 * rounded to 16 floats so that what follows stays 64-byte aligned. */
static size_t pos_bias_floats(int32_t L) { return ((size_t)2 * (size_t)L + 31 + 15) & ~(size_t)15; }

size_t cpu_attention_scratch(int32_t L, int32_t HS) {
    size_t Lp = ((size_t)L + 31) & ~(size_t)31;
    return pos_bias_floats(L) + (size_t)HS * Lp + (size_t)L * HS + 8 * Lp + 8 * (size_t)HS + 64;
}

/* A product's scratch: a tile's partial sums and packed rows (the SIMD
 * families), or the tile's result before its epilogue (portable C). */
size_t cpu_linear_scratch(const cpu_isa *isa, int32_t K, int32_t N) {
    size_t rows = (size_t)isa->tile_rows, nr = (size_t)isa->nr;
    size_t a = rows * nr + rows * (size_t)K;
    size_t t = rows * (((size_t)N + nr - 1) / nr * nr);
    return a > t ? a : t;
}

int cpu_scratch_reserve(int32_t C, int32_t FF, int32_t HS, int32_t max_seqlen, cpu_kernels k) {
    const cpu_isa *isa = isa_of(k);
    size_t need = cpu_linear_scratch(isa, C, 3 * C);
    if (cpu_linear_scratch(isa, C, FF) > need) need = cpu_linear_scratch(isa, C, FF);
    if (cpu_linear_scratch(isa, FF, C) > need) need = cpu_linear_scratch(isa, FF, C);
    if (cpu_attention_scratch(max_seqlen, HS) > need) need = cpu_attention_scratch(max_seqlen, HS);
    if ((size_t)C * 2 > need) need = (size_t)C * 2;
    return thread_scratch(need) != NULL;
}

/* ---- the ops that share a parallel region ---------------------------------------------- */

void embed_layernorm_rows_cpu(float *out, const int32_t *ids, const int32_t *type_ids, const int32_t *pos,
                              const float *word, const float *pos_emb, const float *type_emb, const float *ln_w,
                              const float *ln_b, float eps, int32_t T, int32_t C, cpu_kernels k) {
    const cpu_isa *isa = isa_of(k);
    float *row = thread_scratch((size_t)C);
#pragma omp for schedule(static)
    for (int32_t t = 0; t < T; t++) {
        isa->embed_row(row, word + (size_t)ids[t] * C, pos_emb + (size_t)pos[t] * C,
                       type_emb + (size_t)type_ids[t] * C, C);
        isa->layernorm_row(out + (size_t)t * C, row, ln_w, ln_b, eps, C);
    }
}

void layernorm_cpu(float *out, const float *inp, const float *ln_w, const float *ln_b, float eps, int32_t T,
                   int32_t C, cpu_kernels k) {
    const cpu_isa *isa = isa_of(k);
#pragma omp for schedule(static)
    for (int32_t t = 0; t < T; t++) isa->layernorm_row(out + (size_t)t * C, inp + (size_t)t * C, ln_w, ln_b, eps, C);
}

size_t linear_packed_size(int32_t N, int32_t K, cpu_kernels k) {
    const cpu_isa *isa = isa_of(k);
    if (isa->packed) return (size_t)(N + isa->nr - 1) / (size_t)isa->nr * (size_t)isa->nr * (size_t)K;
    return (size_t)N * (size_t)K;
}

void linear_pack(float *packed, const float *w, int32_t N, int32_t K, cpu_kernels k) {
    const cpu_isa *isa = isa_of(k);
    if (!isa->packed) {
        memcpy(packed, w, (size_t)N * K * sizeof *w);
        return;
    }
    const int32_t nr = isa->nr, P = (N + nr - 1) / nr;
    for (int32_t p = 0; p < P; p++)
        for (int32_t kk = 0; kk < K; kk++)
            for (int32_t j = 0; j < nr; j++) {
                int32_t n = p * nr + j;
                packed[((size_t)p * K + kk) * nr + j] = n < N ? w[(size_t)n * K + kk] : 0.0f;
            }
}

/* How a product is cut into tiles for the threads: blocks of up to
 * tile_rows rows against all output features (the rows are packed once per
 * tile, so a tile should reach across as many panels as it can), and
 * narrower groups of panels while there are fewer than 4 tiles per thread,
 * so that short batches (one sentence: a few rows) still keep every core
 * busy, each reading only its share of W. */
typedef struct {
    int32_t rows, panels, n_row_tiles, n_panel_tiles;
} tile_plan;

static tile_plan tile_plan_make(const cpu_isa *isa, int32_t T, int32_t N, int threads) {
    tile_plan tp;
    const int32_t P = (N + isa->nr - 1) / isa->nr;
    tp.rows = isa->tile_rows;
    tp.n_row_tiles = (T + tp.rows - 1) / tp.rows;
    int32_t g = P;
    while (g > 1 && tp.n_row_tiles * ((P + g - 1) / g) < 4 * threads) g = (g + 1) / 2;
    tp.panels = g;
    tp.n_panel_tiles = (P + g - 1) / g;
    return tp;
}

void linear_cpu(float *out, const float *inp, const float *w_packed, const float *bias, const float *res, int act,
                int32_t T, int32_t K, int32_t N, cpu_kernels k) {
    const cpu_isa *isa = isa_of(k);
    const tile_plan tp = tile_plan_make(isa, T, N, omp_get_num_threads());
    const int32_t P = (N + isa->nr - 1) / isa->nr, n_tiles = tp.n_row_tiles * tp.n_panel_tiles;
    float *scratch = thread_scratch(cpu_linear_scratch(isa, K, N));
#pragma omp for schedule(dynamic, 1)
    for (int32_t i = 0; i < n_tiles; i++) {
        const int32_t rt = i / tp.n_panel_tiles, pt = i % tp.n_panel_tiles;
        const int32_t m0 = rt * tp.rows, m1 = m0 + tp.rows < T ? m0 + tp.rows : T;
        const int32_t p0 = pt * tp.panels, p1 = p0 + tp.panels < P ? p0 + tp.panels : P;
        isa->linear_tile(out, inp, w_packed, bias, res, act, m0, m1, p0, p1, K, N, scratch);
    }
}

void linear_rows_cpu(float *out, const float *inp, const float *w_packed, const float *bias, const float *res,
                     int act, int32_t m0, int32_t m1, int32_t K, int32_t N, cpu_kernels k) {
    const cpu_isa *isa = isa_of(k);
    const int32_t P = (N + isa->nr - 1) / isa->nr, rows = isa->tile_rows;
    float *scratch = thread_scratch(cpu_linear_scratch(isa, K, N));
    for (int32_t m = m0; m < m1; m += rows)
        isa->linear_tile(out, inp, w_packed, bias, res, act, m, m + rows < m1 ? m + rows : m1, 0, P, K, N, scratch);
}

void layernorm_rows_cpu(float *out, const float *inp, const float *ln_w, const float *ln_b, float eps, int32_t m0,
                        int32_t m1, int32_t C, cpu_kernels k) {
    const cpu_isa *isa = isa_of(k);
    for (int32_t t = m0; t < m1; t++) isa->layernorm_row(out + (size_t)t * C, inp + (size_t)t * C, ln_w, ln_b, eps, C);
}

/* row[0 .. 2L - 1) = head h's bias for offsets j - i = -(L - 1) .. L - 1,
 * then zeros; returns the pointer at offset 0. */
static const float *pos_bias_row(float *row, const float *rel_bias, int32_t L, int32_t h, int32_t NH) {
    for (int32_t k = 0; k < 2 * L - 1; k++) row[k] = rel_bias[(size_t)rel_bucket(k - (L - 1)) * NH + h];
    for (size_t k = (size_t)(2 * L - 1); k < pos_bias_floats(L); k++) row[k] = 0.0f;
    return row + (L - 1);
}

void attention_heads_cpu(float *out, const float *qkv, const float *bias, const float *rel_bias,
                         const int32_t *cu_seqlens, int32_t S, int32_t NH, int32_t HS, const int32_t *seq_order,
                         cpu_kernels k) {
    const cpu_isa *isa = isa_of(k);
    int32_t max_len = 0;
    for (int32_t s = 0; s < S; s++)
        if (cu_seqlens[s + 1] - cu_seqlens[s] > max_len) max_len = cu_seqlens[s + 1] - cu_seqlens[s];
    float *row = thread_scratch(cpu_attention_scratch(max_len, HS));
    float *scratch = row + pos_bias_floats(max_len);
#pragma omp for schedule(dynamic, 1)
    for (int32_t sh = 0; sh < S * NH; sh++) {
        int32_t s = seq_order ? seq_order[sh / NH] : sh / NH, h = sh % NH;
        int32_t t0 = cu_seqlens[s], L = cu_seqlens[s + 1] - t0;
        if (L <= 0) continue;
        const float *pb = rel_bias ? pos_bias_row(row, rel_bias, L, h, NH) : NULL;
        if (!isa->attention_head(out, qkv, bias, pb, t0, L, h, NH, HS, scratch))
            cpu_attention_head_generic(out, qkv, bias, pb, t0, L, h, NH, HS, scratch);
    }
}

void pool_rows_cpu(float *out, const float *hidden, const int32_t *cu_seqlens, int32_t S, int32_t C,
                   ember_pooling pooling, int normalize, cpu_kernels k) {
    (void)k; /* one portable loop: pooling is a sliver of the time */
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
                         const float *ln_b, float eps, int32_t T, int32_t C, cpu_kernels k) {
#pragma omp parallel
    embed_layernorm_rows_cpu(out, ids, type_ids, pos, word, pos_emb, type_emb, ln_w, ln_b, eps, T, C, k);
}

/* The plain product with OpenBLAS on the weights as PyTorch stores them: the
 * reference of the CUDA projections, whatever family k is. */
void matmul_cpu(float *out, const float *inp, const float *w, int32_t T, int32_t K, int32_t N, cpu_kernels k) {
    (void)k;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, N, K, 1.0f, inp, K, w, K, 0.0f, out, N);
}

void dense_cpu(float *out, const float *inp, const float *w, const float *bias, dense_activation act, int32_t S,
               int32_t K, int32_t N, cpu_kernels k) {
    matmul_cpu(out, inp, w, S, K, N, k);
    for (size_t i = 0; i < (size_t)S * (size_t)N; i++) {
        float v = out[i] + (bias ? bias[i % (size_t)N] : 0.0f);
        switch (act) {
        case DENSE_IDENTITY: break;
        case DENSE_TANH: v = tanhf(v); break;
        case DENSE_RELU: v = v > 0 ? v : 0.0f; break;
        case DENSE_GELU: v = 0.5f * v * (1.0f + erff(v * (float)M_SQRT1_2)); break;
        case DENSE_SIGMOID: v = 1.0f / (1.0f + expf(-v)); break;
        }
        out[i] = v;
    }
}

void bias_residual_layernorm_cpu(float *out, const float *inp, const float *bias, const float *residual,
                                 const float *ln_w, const float *ln_b, float eps, int32_t T, int32_t C, cpu_kernels k) {
    const cpu_isa *isa = isa_of(k);
#pragma omp parallel
    {
        float *row = thread_scratch((size_t)C);
#pragma omp for schedule(static)
        for (int32_t t = 0; t < T; t++) {
            isa->bias_residual_row(row, inp + (size_t)t * C, bias, residual + (size_t)t * C, C);
            isa->layernorm_row(out + (size_t)t * C, row, ln_w, ln_b, eps, C);
        }
    }
}

void bias_act_cpu(float *out, const float *inp, const float *bias, activation act, int32_t T, int32_t N,
                  cpu_kernels k) {
    const cpu_isa *isa = isa_of(k);
#pragma omp parallel for schedule(static)
    for (int32_t t = 0; t < T; t++) isa->bias_act_row(out + (size_t)t * N, inp + (size_t)t * N, bias, (int)act, N);
}

void attention_cpu(float *out, const float *qkv, const float *bias, const float *rel_bias, const int32_t *cu_seqlens,
                   int32_t S, int32_t max_seqlen, int32_t NH, int32_t HS, cpu_kernels k) {
    (void)max_seqlen;
#pragma omp parallel
    attention_heads_cpu(out, qkv, bias, rel_bias, cu_seqlens, S, NH, HS, NULL, k);
}

void pool_cpu(float *out, const float *hidden, const int32_t *cu_seqlens, int32_t S, int32_t C, ember_pooling pooling,
              int normalize, cpu_kernels k) {
#pragma omp parallel
    pool_rows_cpu(out, hidden, cu_seqlens, S, C, pooling, normalize, k);
}
