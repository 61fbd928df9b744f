/* The CPU forward pass against PyTorch: the tiny random BERT layer by layer
 * (tools/make_tiny_bert.py wrote its activations), and the real
 * all-MiniLM-L6-v2 against sentence-transformers on STS-B. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ember_internal.h"
#include "model/safetensors.h"
#include "test_util.h"

#define TINY_REF SRC_PATH("tests/data/tiny-bert-ref/")
#define TINY_MPNET_REF SRC_PATH("tests/data/tiny-mpnet-ref/")

typedef struct {
    json_t *root;
    int32_t n;
    const char **texts;
    ember_sequence *seqs;
    int32_t *ids;
    int32_t n_tokens;
} tiny_ref;

static void tiny_ref_load_from(tiny_ref *r, const char *path) {
    json_error_t err;
    r->root = json_load_file(path, 0, &err);
    cr_assert(r->root, "texts.json: %s", err.text);
    json_t *texts = json_object_get(r->root, "texts"), *ids = json_object_get(r->root, "ids");
    r->n = (int32_t)json_array_size(texts);
    cr_assert_eq(json_array_size(ids), (size_t)r->n);
    r->texts = calloc((size_t)r->n, sizeof *r->texts);
    r->seqs = calloc((size_t)r->n, sizeof *r->seqs);
    r->ids = malloc(8192 * sizeof *r->ids);
    r->n_tokens = 0;
    for (int32_t i = 0; i < r->n; i++) {
        r->texts[i] = json_string_value(json_array_get(texts, (size_t)i));
        json_t *a = json_array_get(ids, (size_t)i);
        r->seqs[i].ids = r->ids + r->n_tokens;
        r->seqs[i].n = (int32_t)json_array_size(a);
        for (size_t k = 0; k < json_array_size(a); k++)
            r->ids[r->n_tokens++] = (int32_t)json_integer_value(json_array_get(a, k));
    }
}

static void tiny_ref_load(tiny_ref *r) { tiny_ref_load_from(r, TINY_REF "texts.json"); }

static void tiny_ref_free(tiny_ref *r) {
    json_decref(r->root);
    free(r->texts);
    free(r->seqs);
    free(r->ids);
}

/* Compare a tensor with the reference, printing max |diff|. */
static void expect_close(const safetensors_file *acts, const char *name, const float *got, size_t n, float tol) {
    const st_tensor *t = safetensors_find(acts, name);
    cr_assert(t, "reference tensor %s missing", name);
    cr_assert_eq((size_t)t->numel, n, "%s: %lld values in the reference, %zu here", name, (long long)t->numel, n);
    float *want = malloc(n * sizeof *want);
    cr_assert_eq(st_tensor_to_f32(t, want), EMBER_OK);
    float d = max_abs_diff(got, want, n);
    cr_log_info("%-28s max |diff| %.3g", name, d);
    cr_expect_leq(d, tol, "%s: max |diff| %g > %g", name, d, tol);
    free(want);
}

typedef struct {
    float *layers[8]; /* embeddings, layer 0, layer 1, ... */
    int32_t rows, cols;
} captured;

static void capture(void *user, const char *name, int layer, const float *data, int32_t rows, int32_t cols) {
    captured *c = user;
    int slot = strcmp(name, "embeddings") == 0 ? 0 : layer + 1;
    cr_assert(slot >= 0 && slot < 8);
    free(c->layers[slot]);
    c->layers[slot] = malloc((size_t)rows * cols * sizeof(float));
    memcpy(c->layers[slot], data, (size_t)rows * cols * sizeof(float));
    c->rows = rows;
    c->cols = cols;
}

Test(tiny, tokenizes_as_hugging_face) {
    tiny_ref r;
    tiny_ref_load(&r);
    ember_model *m = load_model(TINY_DIR);
    ember_token toks[256];
    for (int32_t i = 0; i < r.n; i++) {
        int32_t n;
        ember_text_stats st;
        cr_assert_eq(ember_tokenize(m, r.texts[i], -1, NULL, 0, NULL, toks, 256, &n, &st), EMBER_OK);
        cr_assert_eq(n, r.seqs[i].n, "text %d: %d tokens, Hugging Face %d", i, n, r.seqs[i].n);
        for (int32_t k = 0; k < n; k++) cr_assert_eq(toks[k].id, r.seqs[i].ids[k], "text %d token %d", i, k);
        cr_assert_eq(st.truncated, st.n_tokens_untruncated > 64);
    }
    ember_model_free(m);
    tiny_ref_free(&r);
}

Test(tiny, layer_by_layer_matches_pytorch) {
    tiny_ref r;
    tiny_ref_load(&r);
    safetensors_file acts;
    cr_assert_eq(safetensors_open(&acts, TINY_REF "activations.safetensors"), EMBER_OK, "%s", ember_last_error());
    ember_model *m = load_model(TINY_DIR);
    captured cap = {0};
    m->be->hook = capture;
    m->be->hook_user = &cap;
    float *hidden = malloc((size_t)r.n_tokens * 64 * sizeof *hidden);
    ember_encode_params p = ember_encode_default_params();
    cr_assert_eq(ember_encode_sequences(m, r.seqs, r.n, &p, NULL, hidden), EMBER_OK, "%s", ember_last_error());
    cr_assert_eq(cap.rows, r.n_tokens);
    size_t n = (size_t)r.n_tokens * 64;
    expect_close(&acts, "hidden.embeddings", cap.layers[0], n, 1e-4f);
    expect_close(&acts, "hidden.layer0", cap.layers[1], n, 1e-4f);
    expect_close(&acts, "hidden.layer1", cap.layers[2], n, 1e-4f);
    expect_close(&acts, "hidden.layer1", hidden, n, 1e-4f);
    for (int i = 0; i < 8; i++) free(cap.layers[i]);
    free(hidden);
    ember_model_free(m);
    safetensors_close(&acts);
    tiny_ref_free(&r);
}

Test(tiny, pooling_modes_match_sentence_transformers) {
    tiny_ref r;
    tiny_ref_load(&r);
    safetensors_file acts;
    cr_assert_eq(safetensors_open(&acts, TINY_REF "activations.safetensors"), EMBER_OK);
    ember_model *m = load_model(TINY_DIR);
    ember_model_info info;
    ember_model_get_info(m, &info);
    cr_assert_eq(info.pooling, EMBER_POOLING_CLS, "a plain BERT pools with CLS by default");
    cr_assert_eq(info.normalize, 0);
    cr_assert_eq(info.max_length, 64);
    float *out = malloc((size_t)r.n * 64 * sizeof *out);
    static const struct {
        ember_pooling mode;
        ember_normalize norm;
        const char *ref;
    } cases[] = {{EMBER_POOLING_DEFAULT, EMBER_NORMALIZE_DEFAULT, "pooled.cls"},
                 {EMBER_POOLING_CLS, EMBER_NORMALIZE_OFF, "pooled.cls"},
                 {EMBER_POOLING_MEAN, EMBER_NORMALIZE_OFF, "pooled.mean"},
                 {EMBER_POOLING_MAX, EMBER_NORMALIZE_OFF, "pooled.max"},
                 {EMBER_POOLING_MEAN_SQRT_LEN, EMBER_NORMALIZE_OFF, "pooled.mean_sqrt_len"},
                 {EMBER_POOLING_MEAN, EMBER_NORMALIZE_ON, "pooled.mean.normalized"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        ember_encode_params p = ember_encode_default_params();
        p.pooling = cases[c].mode;
        p.normalize = cases[c].norm;
        /* from the texts: tokenization, truncation and the forward pass together */
        memset(out, 0xff, (size_t)r.n * 64 * sizeof *out); /* NaN poison */
        ember_text_stats stats[16];
        cr_assert_eq(ember_encode(m, r.texts, NULL, r.n, &p, out, stats), EMBER_OK, "%s", ember_last_error());
        expect_close(&acts, cases[c].ref, out, (size_t)r.n * 64, 1e-4f);
        cr_assert_eq(stats[1].n_tokens, 2, "the empty text is [CLS] [SEP]");
        cr_assert(stats[8].truncated && stats[8].n_tokens == 64 && stats[8].n_tokens_untruncated > 64);
    }
    free(out);
    ember_model_free(m);
    safetensors_close(&acts);
    tiny_ref_free(&r);
}

Test(tiny, token_embeddings) {
    tiny_ref r;
    tiny_ref_load(&r);
    safetensors_file acts;
    cr_assert_eq(safetensors_open(&acts, TINY_REF "activations.safetensors"), EMBER_OK);
    ember_model *m = load_model(TINY_DIR);
    ember_token_embeddings *e = NULL;
    cr_assert_eq(ember_encode_tokens(m, r.texts, NULL, r.n, NULL, &e, NULL), EMBER_OK, "%s", ember_last_error());
    cr_assert_eq(e->n_texts, r.n);
    cr_assert_eq(e->dim, 64);
    cr_assert_eq(e->n_tokens, r.n_tokens);
    for (int32_t i = 0; i < r.n; i++) {
        cr_assert_eq(e->offsets[i + 1] - e->offsets[i], r.seqs[i].n);
        cr_assert_eq(e->tokens[e->offsets[i]].id, r.seqs[i].ids[0]);
        cr_assert(e->tokens[e->offsets[i]].special, "[CLS] is special");
    }
    /* "Hello, World! ..." (text 3): "world" spans bytes 7..12 */
    const ember_token *w = &e->tokens[e->offsets[3] + 3];
    cr_assert_eq(w->start, 7);
    cr_assert_eq(w->end, 12);
    expect_close(&acts, "hidden.layer1", e->data, (size_t)r.n_tokens * 64, 1e-4f);
    ember_token_embeddings_free(e);
    ember_model_free(m);
    safetensors_close(&acts);
    tiny_ref_free(&r);
}

/* The same weights as BF16 (the committed file), F16 and F32 give
 * bit-identical results: the weights hold values all three represent. */
Test(tiny, f32_f16_bf16_files_agree) {
    tiny_ref r;
    tiny_ref_load(&r);
    ember_model *m = load_model(TINY_DIR);
    float *want = malloc((size_t)r.n * 64 * sizeof *want), *got = malloc((size_t)r.n * 64 * sizeof *got);
    cr_assert_eq(ember_encode(m, r.texts, NULL, r.n, NULL, want, NULL), EMBER_OK);
    ember_model_free(m);
    int dtypes[] = {ST_F32, ST_F16};
    for (int k = 0; k < 2; k++) {
        char *dir = copy_dir(TINY_DIR);
        char src[512], dst[512];
        snprintf(src, sizeof src, "%s/model.safetensors", TINY_DIR);
        snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
        safetensors_convert(src, dst, dtypes[k]);
        m = load_model(dir);
        memset(got, 0, (size_t)r.n * 64 * sizeof *got);
        cr_assert_eq(ember_encode(m, r.texts, NULL, r.n, NULL, got, NULL), EMBER_OK);
        cr_expect_eq(memcmp(want, got, (size_t)r.n * 64 * sizeof *got), 0, "%s weights differ from BF16's",
                     st_dtype_name((st_dtype)dtypes[k]));
        ember_model_free(m);
        remove_dir(dir);
    }
    free(want);
    free(got);
    tiny_ref_free(&r);
}

/* A text's vector does not depend on what else is in its batch: to the bit
 * on a batch-invariant backend (the CPU's SIMD kernels), else to fp32
 * rounding (BLAS may block a GEMM differently for other row counts). */
Test(tiny, batching_does_not_change_results) {
    tiny_ref r;
    tiny_ref_load(&r);
    ember_model_params mp = ember_model_default_params();
    cr_assert_eq(ember_tuning_from_env(&mp.tuning), EMBER_OK); /* the kernels load_model uses */
    mp.max_batch_tokens = 64; /* forces many small batches */
    ember_model *big = load_model(TINY_DIR);
    ember_model *small = NULL;
    cr_assert_eq(ember_model_load(TINY_DIR, &mp, &small), EMBER_OK);
    ember_model_info info;
    cr_assert_eq(ember_model_get_info(big, &info), EMBER_OK);
    const float tol = info.batch_invariant ? 0.0f : 1e-5f;
    float *a = malloc((size_t)r.n * 64 * sizeof *a), *b = malloc((size_t)r.n * 64 * sizeof *b);
    cr_assert_eq(ember_encode(big, r.texts, NULL, r.n, NULL, a, NULL), EMBER_OK);
    cr_assert_eq(ember_encode(small, r.texts, NULL, r.n, NULL, b, NULL), EMBER_OK);
    float d = max_abs_diff(a, b, (size_t)r.n * 64);
    cr_expect_leq(d, tol, "%s: one batch vs many: max |diff| %g", info.device_name, d);
    for (int32_t i = 0; i < r.n; i++) {
        cr_assert_eq(ember_encode(big, &r.texts[i], NULL, 1, NULL, b + (size_t)i * 64, NULL), EMBER_OK);
    }
    d = max_abs_diff(a, b, (size_t)r.n * 64);
    cr_expect_leq(d, tol, "%s: one batch vs one at a time: max |diff| %g", info.device_name, d);
    free(a);
    free(b);
    ember_model_free(small);
    ember_model_free(big);
    tiny_ref_free(&r);
}

/* ---- all-MiniLM-L6-v2 against sentence-transformers -------------------------- */

#define MINILM_REF SRC_PATH("tests/data/minilm/")

/* Every STS-B English test sentence's embedding against sentence-transformers'
 * (ref_dir stsb-en.f16.npy: cosine >= 0.99999), and the STS-B Spearman of
 * ember's own to 3 decimals of sentence-transformers' (ref_dir reference.json). */
static void stsb_matches_sentence_transformers(const char *model_dir, const char *ref_dir, int32_t dim) {
    char npy[4096], json[4096];
    snprintf(npy, sizeof npy, "%sstsb-en.f16.npy", ref_dir);
    snprintf(json, sizeof json, "%sreference.json", ref_dir);
    size_t rows;
    stsb_row *r = stsb_read(STSB_DIR "/stsb-en-test.csv", &rows);
    int64_t nr, nc;
    float *want = npy_read(npy, &nr, &nc);
    cr_assert_eq(nr, (int64_t)rows * 2);
    cr_assert_eq(nc, dim);
    const char **texts = malloc(rows * 2 * sizeof *texts);
    for (size_t i = 0; i < rows; i++) {
        texts[2 * i] = r[i].s1;
        texts[2 * i + 1] = r[i].s2;
    }
    ember_model *m = load_model(model_dir);
    float *got = malloc((size_t)nr * dim * sizeof *got);
    cr_assert_eq(ember_encode(m, texts, NULL, (int32_t)nr, NULL, got, NULL), EMBER_OK, "%s", ember_last_error());
    float worst = 1;
    int64_t worst_i = 0;
    for (int64_t i = 0; i < nr; i++) {
        float c = ember_cosine(got + i * dim, want + i * dim, dim);
        if (c < worst) worst = c, worst_i = i;
    }
    cr_log_info("lowest cosine to sentence-transformers: %.7f (sentence %lld: %s)", worst, (long long)worst_i,
                texts[worst_i]);
    cr_assert_geq(worst, 0.99999f, "sentence %lld '%s': cosine %.7f to sentence-transformers' embedding",
                  (long long)worst_i, texts[worst_i], worst);

    /* STS-B Spearman: ember's own, to 3 decimals of sentence-transformers' */
    double *cos = malloc(rows * sizeof *cos), *gold = malloc(rows * sizeof *gold);
    for (size_t i = 0; i < rows; i++) {
        cos[i] = ember_cosine(got + 2 * i * dim, got + (2 * i + 1) * dim, dim);
        gold[i] = r[i].score;
    }
    double rho = spearman(cos, gold, rows);
    json_error_t err;
    json_t *ref = json_load_file(json, 0, &err);
    cr_assert(ref, "%s", err.text);
    double st_rho = json_real_value(json_object_get(ref, "stsb_en_spearman"));
    cr_log_info("STS-B en Spearman: ember %.6f, sentence-transformers %.6f", rho, st_rho);
    cr_assert_eq((long)lround(rho * 1000), (long)lround(st_rho * 1000), "Spearman %.6f vs %.6f", rho, st_rho);
    json_decref(ref);
    free(cos);
    free(gold);
    free(got);
    free(want);
    free(texts);
    stsb_free(r, rows);
    ember_model_free(m);
}

Test(minilm, stsb_embeddings_match_sentence_transformers, .timeout = 600) {
    REQUIRE_MINILM();
    stsb_matches_sentence_transformers(MINILM_DIR, MINILM_REF, 384);
}

Test(minilm, model_info) {
    REQUIRE_MINILM();
    ember_model *m = load_model(MINILM_DIR);
    ember_model_info i;
    cr_assert_eq(ember_model_get_info(m, &i), EMBER_OK);
    cr_assert_eq(i.dim, 384);
    cr_assert_eq(i.n_layers, 6);
    cr_assert_eq(i.n_heads, 12);
    cr_assert_eq(i.max_length, 256, "sentence_bert_config.json's max_seq_length");
    cr_assert_eq(i.pooling, EMBER_POOLING_MEAN);
    cr_assert_eq(i.normalize, 1);
    cr_assert_eq(i.vocab_size, 30522);
    cr_assert_str_eq(i.name, "all-MiniLM-L6-v2");
    ember_model_free(m);
}

/* ---- the tiny random MPNet (tools/make_tiny_mpnet.py) ------------------------------- */

Test(tiny_mpnet, position_buckets_as_transformers) {
    tiny_ref r;
    tiny_ref_load_from(&r, TINY_MPNET_REF "texts.json");
    json_t *b = json_object_get(r.root, "buckets");
    const int32_t from = (int32_t)json_integer_value(json_object_get(r.root, "bucket_from"));
    cr_assert_gt(json_array_size(b), 500);
    for (size_t i = 0; i < json_array_size(b); i++) {
        const int32_t d = from + (int32_t)i, want = (int32_t)json_integer_value(json_array_get(b, i));
        cr_assert_eq(rel_bucket(d), want, "relative position %d: bucket %d, transformers %d", d, rel_bucket(d), want);
    }
    tiny_ref_free(&r);
}

Test(tiny_mpnet, tokenizes_as_hugging_face) {
    tiny_ref r;
    tiny_ref_load_from(&r, TINY_MPNET_REF "texts.json");
    ember_model *m = load_model(TINY_MPNET_DIR);
    ember_token toks[256];
    for (int32_t i = 0; i < r.n; i++) {
        int32_t n;
        ember_text_stats st;
        cr_assert_eq(ember_tokenize(m, r.texts[i], -1, NULL, 0, NULL, toks, 256, &n, &st), EMBER_OK);
        cr_assert_eq(n, r.seqs[i].n, "text %d: %d tokens, Hugging Face %d", i, n, r.seqs[i].n);
        for (int32_t k = 0; k < n; k++)
            cr_assert_eq(toks[k].id, r.seqs[i].ids[k], "text %d token %d: %d, Hugging Face %d", i, k, toks[k].id,
                         r.seqs[i].ids[k]);
        cr_assert_eq(st.truncated, st.n_tokens_untruncated > 160);
    }
    ember_model_free(m);
    tiny_ref_free(&r);
}

Test(tiny_mpnet, model_info) {
    ember_model *m = load_model(TINY_MPNET_DIR);
    ember_model_info i;
    cr_assert_eq(ember_model_get_info(m, &i), EMBER_OK);
    cr_assert_str_eq(i.architecture, "mpnet");
    cr_assert_eq(i.dim, 64);
    cr_assert_eq(i.n_layers, 2);
    cr_assert_eq(i.max_length, 160, "162 positions less the two before the first (padding_idx 1)");
    ember_model_free(m);
}

Test(tiny_mpnet, layer_by_layer_matches_pytorch) {
    tiny_ref r;
    tiny_ref_load_from(&r, TINY_MPNET_REF "texts.json");
    safetensors_file acts;
    cr_assert_eq(safetensors_open(&acts, TINY_MPNET_REF "activations.safetensors"), EMBER_OK, "%s",
                 ember_last_error());
    ember_model *m = load_model(TINY_MPNET_DIR);
    captured cap = {0};
    m->be->hook = capture;
    m->be->hook_user = &cap;
    float *hidden = malloc((size_t)r.n_tokens * 64 * sizeof *hidden);
    ember_encode_params p = ember_encode_default_params();
    cr_assert_eq(ember_encode_sequences(m, r.seqs, r.n, &p, NULL, hidden), EMBER_OK, "%s", ember_last_error());
    cr_assert_eq(cap.rows, r.n_tokens);
    size_t n = (size_t)r.n_tokens * 64;
    expect_close(&acts, "hidden.embeddings", cap.layers[0], n, 1e-4f);
    expect_close(&acts, "hidden.layer0", cap.layers[1], n, 1e-4f);
    expect_close(&acts, "hidden.layer1", cap.layers[2], n, 1e-4f);
    expect_close(&acts, "hidden.layer1", hidden, n, 1e-4f);
    for (int i = 0; i < 8; i++) free(cap.layers[i]);
    free(hidden);
    ember_model_free(m);
    safetensors_close(&acts);
    tiny_ref_free(&r);
}

Test(tiny_mpnet, pooled_texts_match_sentence_transformers) {
    tiny_ref r;
    tiny_ref_load_from(&r, TINY_MPNET_REF "texts.json");
    safetensors_file acts;
    cr_assert_eq(safetensors_open(&acts, TINY_MPNET_REF "activations.safetensors"), EMBER_OK);
    ember_model *m = load_model(TINY_MPNET_DIR);
    float *out = malloc((size_t)r.n * 64 * sizeof *out);
    static const struct {
        ember_pooling mode;
        ember_normalize norm;
        const char *ref;
    } cases[] = {{EMBER_POOLING_CLS, EMBER_NORMALIZE_OFF, "pooled.cls"},
                 {EMBER_POOLING_MEAN, EMBER_NORMALIZE_OFF, "pooled.mean"},
                 {EMBER_POOLING_MEAN, EMBER_NORMALIZE_ON, "pooled.mean.normalized"}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        ember_encode_params p = ember_encode_default_params();
        p.pooling = cases[c].mode;
        p.normalize = cases[c].norm;
        /* from the texts: tokenization, truncation, positions and the forward pass together */
        memset(out, 0xff, (size_t)r.n * 64 * sizeof *out); /* NaN poison */
        cr_assert_eq(ember_encode(m, r.texts, NULL, r.n, &p, out, NULL), EMBER_OK, "%s", ember_last_error());
        expect_close(&acts, cases[c].ref, out, (size_t)r.n * 64, 1e-4f);
    }
    free(out);
    ember_model_free(m);
    safetensors_close(&acts);
    tiny_ref_free(&r);
}

/* One text alone or among others of other lengths: the same vector, bit
 * for bit (positions and the bias are per sequence in a packed batch). */
Test(tiny_mpnet, batching_does_not_change_results) {
    tiny_ref r;
    tiny_ref_load_from(&r, TINY_MPNET_REF "texts.json");
    ember_model *m = load_model(TINY_MPNET_DIR);
    ember_model_info info;
    cr_assert_eq(ember_model_get_info(m, &info), EMBER_OK);
    /* bit for bit where the kernels say so; the portable ones within 1e-5 */
    const float tol = info.batch_invariant ? 0.0f : 1e-5f;
    float *all = malloc((size_t)r.n * 64 * sizeof *all), one[64];
    cr_assert_eq(ember_encode(m, r.texts, NULL, r.n, NULL, all, NULL), EMBER_OK, "%s", ember_last_error());
    for (int32_t i = 0; i < r.n; i++) {
        cr_assert_eq(ember_encode(m, &r.texts[i], NULL, 1, NULL, one, NULL), EMBER_OK);
        const float d = max_abs_diff(one, all + (size_t)i * 64, 64);
        cr_assert_leq(d, tol, "%s: text %d alone and in a batch: max |diff| %g", info.device_name, i, d);
    }
    free(all);
    ember_model_free(m);
    tiny_ref_free(&r);
}

/* ---- all-mpnet-base-v2 against sentence-transformers -------------------------- */

#define MPNET_REF SRC_PATH("tests/data/mpnet/")

Test(mpnet, stsb_embeddings_match_sentence_transformers, .timeout = 1200) {
    REQUIRE_MPNET();
    /* ~10x all-MiniLM-L6-v2's work: run with the processor's best kernels (test_model)
     * only; test_model_generic / _avx2 check their families on the tiny MPNet */
    const char *fam = getenv("EMBER_CPU_KERNELS");
    if (fam && *fam) cr_skip_test("EMBER_CPU_KERNELS=%s: all-mpnet-base-v2 on STS-B runs in test_model only", fam);
    stsb_matches_sentence_transformers(MPNET_DIR, MPNET_REF, 768);
}

Test(mpnet, model_info) {
    REQUIRE_MPNET();
    ember_model *m = load_model(MPNET_DIR);
    ember_model_info i;
    cr_assert_eq(ember_model_get_info(m, &i), EMBER_OK);
    cr_assert_str_eq(i.architecture, "mpnet");
    cr_assert_eq(i.dim, 768);
    cr_assert_eq(i.n_layers, 12);
    cr_assert_eq(i.n_heads, 12);
    cr_assert_eq(i.max_length, 384, "sentence_bert_config.json's max_seq_length");
    cr_assert_eq(i.pooling, EMBER_POOLING_MEAN);
    cr_assert_eq(i.normalize, 1);
    cr_assert_eq(i.vocab_size, 30527);
    ember_model_free(m);
}
