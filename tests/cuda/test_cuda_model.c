/* The CUDA backend end to end against the CPU path, through the public API,
 * on the tiny random BERT (tests/data/tiny-bert) and on all-MiniLM-L6-v2:
 *   fp32:        max |diff| <= 1e-3 on every hidden state (and pooled vector);
 *   fp16, bf16:  every pooled vector's cosine to the CPU one >= 0.999, and the
 *                STS-B Spearman correlation equal to the CPU path's to 3
 *                decimals (|difference| < 0.0005).
 * Host output buffers are filled with NaN before every call. Without a GPU
 * every test skips with "no CUDA device". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda_layout.h"
#include "cuda_test_util.h"
#include "ember_internal.h"

#define FP32_MAX_DIFF 1e-3f
#define MIN_COSINE 0.999f

static const char *tiny_dir(void) {
    return require_path("EMBER_TINY_DIR", TINY_DIR, "the tiny model is written by tools/make_tiny_bert.py");
}
static const char *minilm_dir(void) { return require_path("EMBER_MINILM_DIR", MINILM_DIR, "run weights/fetch.sh"); }
static const char *tiny_mpnet_dir(void) {
    return require_path("EMBER_TINY_MPNET_DIR", TINY_MPNET_DIR, "the tiny MPNet is written by tools/make_tiny_mpnet.py");
}

static ember_model *load_on(const char *dir, ember_device device, ember_dtype dtype, int32_t max_batch_tokens) {
    ember_model_params p = ember_model_default_params();
    p.device = device;
    p.dtype = dtype;
    p.max_batch_tokens = max_batch_tokens;
    /* the switches the tests below set, as the programs read them */
    cr_assert_eq(ember_tuning_from_env(&p.tuning), EMBER_OK, "%s", ember_last_error());
    ember_model *m = NULL;
    ember_status st = ember_model_load(dir, &p, &m);
    cr_assert_eq(st, EMBER_OK, "loading %s on %s (%s): %s", dir, device == EMBER_DEVICE_CUDA ? "cuda" : "cpu",
                 ember_dtype_str(dtype), ember_last_error());
    return m;
}

/* Random token sequences: [CLS] ids... [SEP] shaped, every length from 1 to
 * max_len represented at the ends. */
typedef struct {
    int32_t S, T;
    ember_sequence *seqs;
    int32_t **ids;
} seq_set;

static seq_set random_sequences(int32_t S, int32_t max_len, int32_t V) {
    seq_set r = {S, 0, calloc((size_t)S, sizeof(ember_sequence)), calloc((size_t)S, sizeof(int32_t *))};
    for (int32_t s = 0; s < S; s++) {
        int32_t n = s == 0 ? 1 : s == 1 ? max_len : s == 2 ? 2 : rng_int(1, max_len);
        r.ids[s] = malloc((size_t)n * sizeof(int32_t));
        for (int32_t k = 0; k < n; k++) r.ids[s][k] = rng_int(0, V - 1);
        r.seqs[s] = (ember_sequence){r.ids[s], NULL, n, 0};
        r.T += n;
    }
    return r;
}

static void seq_set_free(seq_set *r) {
    for (int32_t s = 0; s < r->S; s++) free(r->ids[s]);
    free(r->ids);
    free(r->seqs);
}

static float *nan_buffer(size_t n) {
    float *x = malloc((n ? n : 1) * sizeof *x);
    cr_assert(x);
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

/* Encode; pooled (S, C) and hidden (T, C) come back freshly allocated. */
static void encode(ember_model *m, const seq_set *r, ember_pooling pooling, ember_normalize normalize, float **pooled,
                   float **hidden) {
    ember_model_info info;
    ember_model_get_info(m, &info);
    const size_t C = (size_t)info.dim;
    *pooled = nan_buffer((size_t)r->S * C);
    if (hidden) *hidden = nan_buffer((size_t)r->T * C);
    ember_encode_params p = ember_encode_default_params();
    p.pooling = pooling;
    p.normalize = normalize;
    ember_status st = ember_encode_sequences(m, r->seqs, r->S, &p, *pooled, hidden ? *hidden : NULL);
    cr_assert_eq(st, EMBER_OK, "ember_encode_sequences on %s: %s", info.device_name, ember_last_error());
    for (size_t i = 0; i < (size_t)r->S * C; i++)
        cr_assert(isfinite((*pooled)[i]), "pooled[%zu] = %g: not written or not finite", i, (*pooled)[i]);
    if (hidden)
        for (size_t i = 0; i < (size_t)r->T * C; i++)
            cr_assert(isfinite((*hidden)[i]), "hidden[%zu] = %g: not written or not finite", i, (*hidden)[i]);
}

/* The smallest cosine between rows of a and b; *worst its row. */
static float min_cosine(const float *a, const float *b, int32_t rows, int32_t dim, int32_t *worst) {
    float m = 2;
    for (int32_t i = 0; i < rows; i++) {
        float c = ember_cosine(a + (size_t)i * dim, b + (size_t)i * dim, dim);
        if (c < m || isnan(c)) {
            m = isnan(c) ? -2 : c;
            *worst = i;
        }
    }
    return m;
}

/* ---- fp32: hidden states within 1e-3 of the CPU ------------------------------------------- */

static void check_fp32(const char *dir, int32_t S, int32_t max_batch_tokens) {
    require_cuda();
    ember_model *cpu = load_on(dir, EMBER_DEVICE_CPU, EMBER_DTYPE_FP32, 0);
    ember_model *gpu = load_on(dir, EMBER_DEVICE_CUDA, EMBER_DTYPE_FP32, max_batch_tokens);
    ember_model_info info;
    ember_model_get_info(gpu, &info);
    cr_assert_eq(info.device, EMBER_DEVICE_CUDA);
    cr_assert_eq(info.dtype, EMBER_DTYPE_FP32);
    seq_set r = random_sequences(S, info.max_length, info.vocab_size);
    const ember_pooling poolings[] = {EMBER_POOLING_DEFAULT, EMBER_POOLING_MEAN, EMBER_POOLING_MAX};
    for (int pi = 0; pi < 3; pi++) {
        float *p_cpu, *h_cpu, *p_gpu, *h_gpu;
        encode(cpu, &r, poolings[pi], EMBER_NORMALIZE_DEFAULT, &p_cpu, &h_cpu);
        encode(gpu, &r, poolings[pi], EMBER_NORMALIZE_DEFAULT, &p_gpu, &h_gpu);
        float dh = max_abs_diff(h_gpu, h_cpu, (size_t)r.T * info.dim);
        float dp = max_abs_diff(p_gpu, p_cpu, (size_t)r.S * info.dim);
        cr_log_info("%s fp32 on %s, %d sequences, %d tokens: max |diff| hidden %.3g, pooled %.3g", info.name,
                    info.device_name, r.S, r.T, dh, dp);
        cr_expect_leq(dh, FP32_MAX_DIFF, "%s fp32: hidden states differ from the CPU by %g", info.name, dh);
        cr_expect_leq(dp, FP32_MAX_DIFF, "%s fp32: pooled vectors (pooling %d) differ from the CPU by %g", info.name,
                      (int)poolings[pi], dp);
        free(p_cpu);
        free(h_cpu);
        free(p_gpu);
        free(h_gpu);
    }
    seq_set_free(&r);
    ember_model_free(cpu);
    ember_model_free(gpu);
}

Test(cuda_model, tiny_fp32_matches_cpu) { check_fp32(tiny_dir(), 50, 0); }
/* A small token budget: many forwards per call, batches cut at every boundary. */
Test(cuda_model, tiny_fp32_matches_cpu_in_small_batches) { check_fp32(tiny_dir(), 50, 100); }
Test(cuda_model, minilm_fp32_matches_cpu) { check_fp32(minilm_dir(), 40, 0); }

/* ---- fp16 / bf16: every pooled vector at cosine >= 0.999 ----------------------------------- */

static void check_half(const char *dir, ember_dtype dt, int32_t S) {
    require_cuda();
    ember_model *cpu = load_on(dir, EMBER_DEVICE_CPU, EMBER_DTYPE_FP32, 0);
    ember_model *gpu = load_on(dir, EMBER_DEVICE_CUDA, dt, 0);
    ember_model_info info;
    ember_model_get_info(gpu, &info);
    cr_assert_eq(info.dtype, dt);
    seq_set r = random_sequences(S, info.max_length, info.vocab_size);
    const ember_pooling poolings[] = {EMBER_POOLING_DEFAULT, EMBER_POOLING_CLS, EMBER_POOLING_MEAN};
    for (int pi = 0; pi < 3; pi++) {
        float *p_cpu, *h_cpu, *p_gpu, *h_gpu;
        encode(cpu, &r, poolings[pi], EMBER_NORMALIZE_DEFAULT, &p_cpu, &h_cpu);
        encode(gpu, &r, poolings[pi], EMBER_NORMALIZE_DEFAULT, &p_gpu, &h_gpu);
        int32_t worst = 0, worst_tok = 0;
        float c = min_cosine(p_gpu, p_cpu, r.S, info.dim, &worst);
        float ct = min_cosine(h_gpu, h_cpu, r.T, info.dim, &worst_tok);
        cr_log_info("%s %s on %s, pooling %d: min pooled cosine %.6f (sequence %d of %d tokens), min token cosine "
                    "%.6f, max |diff| hidden %.3g",
                    info.name, ember_dtype_str(dt), info.device_name, (int)poolings[pi], c, worst, r.seqs[worst].n, ct,
                    max_abs_diff(h_gpu, h_cpu, (size_t)r.T * info.dim));
        cr_expect_geq(c, MIN_COSINE, "%s %s: pooled vector %d (pooling %d) has cosine %f to the CPU's", info.name,
                      ember_dtype_str(dt), worst, (int)poolings[pi], c);
        free(p_cpu);
        free(h_cpu);
        free(p_gpu);
        free(h_gpu);
    }
    seq_set_free(&r);
    ember_model_free(cpu);
    ember_model_free(gpu);
}

Test(cuda_model, tiny_fp16_matches_cpu) { check_half(tiny_dir(), EMBER_DTYPE_FP16, 50); }
Test(cuda_model, tiny_bf16_matches_cpu) { check_half(tiny_dir(), EMBER_DTYPE_BF16, 50); }
Test(cuda_model, minilm_fp16_matches_cpu) { check_half(minilm_dir(), EMBER_DTYPE_FP16, 40); }
/* MPNet: the relative position bias in every attention kernel (two heads of
 * 32: tensor cores in fp16 / bf16, the scalar kernel in fp32), sequences up
 * to 160 tokens (distances past 128), RoBERTa-style positions, no token types */
Test(cuda_model, tiny_mpnet_fp32_matches_cpu) { check_fp32(tiny_mpnet_dir(), 50, 0); }
Test(cuda_model, tiny_mpnet_fp16_matches_cpu) { check_half(tiny_mpnet_dir(), EMBER_DTYPE_FP16, 50); }
Test(cuda_model, tiny_mpnet_bf16_matches_cpu) { check_half(tiny_mpnet_dir(), EMBER_DTYPE_BF16, 50); }
Test(cuda_model, tiny_mpnet_fp16_wmma_attention_matches_cpu) {
    setenv("EMBER_CUDA_ATTENTION", "wmma", 1);
    check_half(tiny_mpnet_dir(), EMBER_DTYPE_FP16, 50);
}
Test(cuda_model, minilm_bf16_matches_cpu) { check_half(minilm_dir(), EMBER_DTYPE_BF16, 40); }

/* The backend's switches (ember_tuning, set from the environment as the
 * programs do; each Criterion test runs in its own process): the same numbers with the first
 * tensor-core attention kernel, with the FFN run in token chunks (sizes that
 * cut sequences and batches anywhere), and with per-op profiling on. */
Test(cuda_model, minilm_fp16_wmma_attention_matches_cpu) {
    setenv("EMBER_CUDA_ATTENTION", "wmma", 1);
    check_half(minilm_dir(), EMBER_DTYPE_FP16, 40);
}
Test(cuda_model, tiny_fp32_ffn_in_chunks_matches_cpu) {
    setenv("EMBER_CUDA_FFN_CHUNK", "37", 1);
    check_fp32(tiny_dir(), 50, 0);
    check_fp32(tiny_dir(), 50, 100);
}
Test(cuda_model, minilm_bf16_ffn_in_chunks_matches_cpu) {
    setenv("EMBER_CUDA_FFN_CHUNK", "100", 1);
    check_half(minilm_dir(), EMBER_DTYPE_BF16, 40);
}
Test(cuda_model, tiny_fp32_cublaslt_matches_cpu) {
    setenv("EMBER_CUDA_GEMM", "lt", 1);
    check_fp32(tiny_dir(), 50, 0);
    check_fp32(tiny_dir(), 50, 100);
}
Test(cuda_model, minilm_fp16_cublaslt_matches_cpu) {
    setenv("EMBER_CUDA_GEMM", "lt", 1);
    check_half(minilm_dir(), EMBER_DTYPE_FP16, 40);
}
Test(cuda_model, minilm_bf16_cublaslt_tuned_matches_cpu) {
    setenv("EMBER_CUDA_GEMM", "lt-tune", 1);
    check_half(minilm_dir(), EMBER_DTYPE_BF16, 40);
}
Test(cuda_model, tiny_fp16_profiled_matches_cpu) {
    setenv("EMBER_CUDA_PROFILE", "1", 1);
    check_half(tiny_dir(), EMBER_DTYPE_FP16, 50);
}

/* ---- layer by layer (the debug hook) -------------------------------------------------------- */

typedef struct {
    int n;
    float *data[64];
    int32_t rows[64], cols[64];
} layer_dump;

static void dump_hook(void *user, const char *name, int layer, const float *data, int32_t rows, int32_t cols) {
    layer_dump *d = user;
    (void)name;
    cr_assert(d->n < 64 && layer + 1 == d->n, "hook called out of order (layer %d)", layer);
    d->data[d->n] = malloc((size_t)rows * cols * sizeof(float));
    memcpy(d->data[d->n], data, (size_t)rows * cols * sizeof(float));
    d->rows[d->n] = rows;
    d->cols[d->n] = cols;
    d->n++;
}

Test(cuda_model, tiny_every_layer_matches_cpu) {
    require_cuda();
    const char *dir = tiny_dir();
    ember_model *cpu = load_on(dir, EMBER_DEVICE_CPU, EMBER_DTYPE_FP32, 0);
    ember_model *gpu = load_on(dir, EMBER_DEVICE_CUDA, EMBER_DTYPE_FP32, 0);
    seq_set r = random_sequences(20, cpu->max_length, cpu->files.cfg.V);
    layer_dump dc = {0}, dg = {0};
    cpu->be->hook = dump_hook;
    cpu->be->hook_user = &dc;
    gpu->be->hook = dump_hook;
    gpu->be->hook_user = &dg;
    float *p_cpu, *p_gpu;
    encode(cpu, &r, EMBER_POOLING_MEAN, EMBER_NORMALIZE_OFF, &p_cpu, NULL);
    encode(gpu, &r, EMBER_POOLING_MEAN, EMBER_NORMALIZE_OFF, &p_gpu, NULL);
    cr_assert_eq(dc.n, cpu->files.cfg.L + 1);
    cr_assert_eq(dg.n, dc.n);
    for (int i = 0; i < dc.n; i++) {
        cr_assert_eq(dg.rows[i], dc.rows[i]);
        float d = max_abs_diff(dg.data[i], dc.data[i], (size_t)dc.rows[i] * dc.cols[i]);
        cr_log_info("%s: max |diff| %.3g", i == 0 ? "embeddings" : "layer_out", d);
        cr_expect_leq(d, FP32_MAX_DIFF, "%s %d differs from the CPU by %g", i == 0 ? "embeddings" : "layer_out",
                      i - 1, d);
        free(dg.data[i]);
        free(dc.data[i]);
    }
    free(p_cpu);
    free(p_gpu);
    seq_set_free(&r);
    ember_model_free(cpu);
    ember_model_free(gpu);
}

/* ---- texts, token embeddings ------------------------------------------------------------------ */

static const char *TEXTS[] = {
    "the quick brown fox jumps over the lazy dog", "", "a", "Hello, World! What's up?",
    "time flies like an arrow; fruit flies like a banana.", "café déjà vu naïve résumé",
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen "
    "eighteen nineteen twenty twenty-one twenty-two twenty-three twenty-four twenty-five twenty-six twenty-seven "
    "twenty-eight twenty-nine thirty thirty-one thirty-two thirty-three thirty-four thirty-five"};
#define N_TEXTS ((int32_t)(sizeof TEXTS / sizeof TEXTS[0]))

static void check_texts(const char *dir) {
    require_cuda();
    const ember_dtype dts[] = {EMBER_DTYPE_FP32, EMBER_DTYPE_FP16, EMBER_DTYPE_BF16};
    ember_model *cpu = load_on(dir, EMBER_DEVICE_CPU, EMBER_DTYPE_FP32, 0);
    ember_model_info info;
    ember_model_get_info(cpu, &info);
    float *v_cpu = nan_buffer((size_t)N_TEXTS * info.dim);
    cr_assert_eq(ember_encode(cpu, TEXTS, NULL, N_TEXTS, NULL, v_cpu, NULL), EMBER_OK, "%s", ember_last_error());
    ember_token_embeddings *t_cpu;
    cr_assert_eq(ember_encode_tokens(cpu, TEXTS, NULL, N_TEXTS, NULL, &t_cpu, NULL), EMBER_OK, "%s",
                 ember_last_error());
    for (int di = 0; di < 3; di++) {
        ember_model *gpu = load_on(dir, EMBER_DEVICE_CUDA, dts[di], 0);
        float *v_gpu = nan_buffer((size_t)N_TEXTS * info.dim);
        cr_assert_eq(ember_encode(gpu, TEXTS, NULL, N_TEXTS, NULL, v_gpu, NULL), EMBER_OK, "%s", ember_last_error());
        ember_token_embeddings *t_gpu;
        cr_assert_eq(ember_encode_tokens(gpu, TEXTS, NULL, N_TEXTS, NULL, &t_gpu, NULL), EMBER_OK, "%s",
                     ember_last_error());
        cr_assert_eq(t_gpu->n_tokens, t_cpu->n_tokens);
        for (int32_t i = 0; i <= N_TEXTS; i++) cr_assert_eq(t_gpu->offsets[i], t_cpu->offsets[i]);
        const size_t n = (size_t)t_cpu->n_tokens * info.dim;
        if (dts[di] == EMBER_DTYPE_FP32) {
            cr_expect_leq(max_abs_diff(v_gpu, v_cpu, (size_t)N_TEXTS * info.dim), FP32_MAX_DIFF);
            cr_expect_leq(max_abs_diff(t_gpu->data, t_cpu->data, n), FP32_MAX_DIFF);
        } else {
            int32_t worst = 0;
            float c = min_cosine(v_gpu, v_cpu, N_TEXTS, info.dim, &worst);
            cr_expect_geq(c, MIN_COSINE, "%s %s: text %d has cosine %f", info.name, ember_dtype_str(dts[di]), worst, c);
            for (size_t i = 0; i < n; i++) cr_assert(isfinite(t_gpu->data[i]));
        }
        ember_token_embeddings_free(t_gpu);
        free(v_gpu);
        ember_model_free(gpu);
    }
    ember_token_embeddings_free(t_cpu);
    free(v_cpu);
    ember_model_free(cpu);
}

Test(cuda_model, tiny_texts_match_cpu) { check_texts(tiny_dir()); }
Test(cuda_model, tiny_mpnet_texts_match_cpu) { check_texts(tiny_mpnet_dir()); }
Test(cuda_model, minilm_texts_match_cpu) { check_texts(minilm_dir()); }

/* ---- STS-B: the quality number must not move ---------------------------------------------------- */

/* Spearman of cos(s1, s2) against the gold scores; the vectors too. */
static double stsb_spearman(ember_model *m, const stsb_row *rows, size_t n, float **vecs) {
    ember_model_info info;
    ember_model_get_info(m, &info);
    const char **texts = malloc(2 * n * sizeof *texts);
    for (size_t i = 0; i < n; i++) {
        texts[2 * i] = rows[i].s1;
        texts[2 * i + 1] = rows[i].s2;
    }
    float *v = nan_buffer(2 * n * (size_t)info.dim);
    cr_assert_eq(ember_encode(m, texts, NULL, (int32_t)(2 * n), NULL, v, NULL), EMBER_OK, "%s", ember_last_error());
    double *pred = malloc(n * sizeof *pred), *gold = malloc(n * sizeof *gold);
    for (size_t i = 0; i < n; i++) {
        pred[i] = ember_cosine(v + 2 * i * info.dim, v + (2 * i + 1) * info.dim, info.dim);
        gold[i] = rows[i].score;
    }
    double rho = spearman(pred, gold, n);
    free(pred);
    free(gold);
    free(texts);
    *vecs = v;
    return rho;
}

Test(cuda_model, minilm_stsb_spearman_matches_cpu) {
    require_cuda();
    const char *dir = minilm_dir();
    const char *stsb = require_path("EMBER_STSB_DIR", STSB_DIR, "the STS-B test set (../shared/data/stsb)");
    char path[4096];
    snprintf(path, sizeof path, "%s/stsb-en-test.csv", stsb);
    size_t n;
    stsb_row *rows = stsb_read(path, &n);
    cr_assert(n > 1000, "%s: %zu rows", path, n);
    ember_model *cpu = load_on(dir, EMBER_DEVICE_CPU, EMBER_DTYPE_FP32, 0);
    float *v_cpu;
    const double rho_cpu = stsb_spearman(cpu, rows, n, &v_cpu);
    ember_model_info info;
    ember_model_get_info(cpu, &info);
    ember_model_free(cpu);
    const ember_dtype dts[] = {EMBER_DTYPE_FP32, EMBER_DTYPE_FP16, EMBER_DTYPE_BF16};
    for (int di = 0; di < 3; di++) {
        ember_model *gpu = load_on(dir, EMBER_DEVICE_CUDA, dts[di], 0);
        float *v_gpu;
        const double rho = stsb_spearman(gpu, rows, n, &v_gpu);
        int32_t worst = 0;
        const float c = min_cosine(v_gpu, v_cpu, (int32_t)(2 * n), info.dim, &worst);
        cr_log_info("STS-B en (%zu pairs), %s: Spearman %.5f on cuda %s vs %.5f on the CPU; min cosine to the CPU "
                    "vectors %.6f",
                    n, info.name, rho, ember_dtype_str(dts[di]), rho_cpu, c);
        cr_expect_lt(fabs(rho - rho_cpu), 0.0005, "%s: Spearman %.5f differs from the CPU's %.5f",
                     ember_dtype_str(dts[di]), rho, rho_cpu);
        cr_expect_geq(c, MIN_COSINE, "%s: sentence %d has cosine %f to the CPU vector", ember_dtype_str(dts[di]), worst, c);
        free(v_gpu);
        ember_model_free(gpu);
    }
    free(v_cpu);
    stsb_free(rows, n);
}

/* ---- the backend's own checks --------------------------------------------------------------- */

Test(cuda_model, info_names_the_card) {
    require_cuda();
    ember_model *gpu = load_on(tiny_dir(), EMBER_DEVICE_CUDA, EMBER_DTYPE_FP16, 0);
    ember_model_info info;
    cr_assert_eq(ember_model_get_info(gpu, &info), EMBER_OK);
    cr_expect_eq(info.device, EMBER_DEVICE_CUDA);
    cr_expect_eq(info.device_index, 0);
    cr_expect_eq(info.dtype, EMBER_DTYPE_FP16);
    cr_expect(strlen(info.device_name) > 0 && strcmp(info.device_name, "cpu") != 0, "device name '%s'",
              info.device_name);
    cr_log_info("device: %s", info.device_name);
    ember_model_free(gpu);
}

Test(cuda_model, forward_rejects_a_malformed_batch) {
    require_cuda();
    ember_model *gpu = load_on(tiny_dir(), EMBER_DEVICE_CUDA, EMBER_DTYPE_FP32, 0);
    const int32_t ids[] = {2, 5, 6, 3}, types[] = {0, 0, 0, 0}, pos[] = {0, 1, 2, 3};
    const int32_t cu_bad[] = {0, 3, 2}, cu_ok[] = {0, 4};
    float out[4 * 64];
    packed_batch b = {2, 4, ids, types, pos, cu_bad, 3};
    cr_expect_eq(gpu->be->forward(gpu->be, &b, out, NULL, EMBER_POOLING_CLS, 0), EMBER_ERR_INVALID_ARGUMENT);
    const int32_t bad_ids[] = {2, 5, 1 << 20, 3};
    b = (packed_batch){1, 4, bad_ids, types, pos, cu_ok, 4};
    cr_expect_eq(gpu->be->forward(gpu->be, &b, out, NULL, EMBER_POOLING_CLS, 0), EMBER_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(ember_last_error(), "out of range") != NULL, "message: %s", ember_last_error());
    /* and a good one still works after the refusals */
    b = (packed_batch){1, 4, ids, types, pos, cu_ok, 4};
    cr_expect_eq(gpu->be->forward(gpu->be, &b, out, NULL, EMBER_POOLING_CLS, 0), EMBER_OK, "%s", ember_last_error());
    ember_model_free(gpu);
}
