/* ember_search against numpy's brute force (tools/make_search_refs.py wrote
 * tests/data/search/: a corpus with tied rows, queries, the expected hits):
 * exact float search, int8 and bit vectors searched and rescored as
 * sentence-transformers does, k larger than the corpus, thread counts,
 * bad arguments, and the shards of an interrupted-then-resumed run. */
#include <jansson.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/npy.h"
#include "common/quantize.h"
#include "pipeline/manifest.h"
#include "test_util.h"

#define DATA SRC_PATH("tests/data/search")

static float *load(const char *name, int64_t *rows, int64_t *cols) {
    char p[4096];
    snprintf(p, sizeof p, "%s/%s", DATA, name);
    return npy_read(p, rows, cols);
}

/* hits of every query against the expected [[row, score], ...] lists */
static void expect_hits(const ember_hit *hits, const int32_t *found, int32_t n, int32_t k, json_t *want,
                        const char *what) {
    cr_assert_eq(json_array_size(want), (size_t)n, "%s", what);
    for (int32_t q = 0; q < n; q++) {
        json_t *w = json_array_get(want, (size_t)q);
        cr_assert_eq((size_t)found[q], json_array_size(w), "%s: query %d found %d, expected %zu", what, q, found[q],
                     json_array_size(w));
        for (int32_t i = 0; i < found[q]; i++) {
            const ember_hit *h = &hits[(size_t)q * k + i];
            long long row = json_integer_value(json_array_get(json_array_get(w, (size_t)i), 0));
            double score = json_number_value(json_array_get(json_array_get(w, (size_t)i), 1));
            cr_assert_eq(h->row, row, "%s: query %d hit %d: row %lld (%.7f), expected %lld (%.7f)", what, q, i,
                         (long long)h->row, (double)h->score, row, score);
            cr_assert(fabs(h->score - score) <= 1e-5 * (1 + fabs(score)), "%s: query %d hit %d: score %.7f vs %.7f",
                      what, q, i, (double)h->score, score);
        }
    }
}

static json_t *expected(void) {
    json_error_t err;
    json_t *root = json_load_file(DATA "/expected.json", 0, &err);
    cr_assert(root, "expected.json: %s", err.text);
    return root;
}

static void search_case(const ember_index *ix, const float *q, int32_t n, int32_t d, int32_t k, int32_t rescore,
                        int threads, json_t *want, const char *what) {
    ember_hit *hits = malloc((size_t)n * k * sizeof *hits);
    int32_t *found = malloc((size_t)n * sizeof *found);
    ember_search_params sp = ember_search_default_params();
    sp.k = k;
    sp.rescore = rescore;
    sp.n_threads = threads;
    cr_assert_eq(ember_search(ix, q, n, d, &sp, hits, found), EMBER_OK, "%s", ember_last_error());
    char label[128];
    snprintf(label, sizeof label, "%s, k %d, %d threads", what, k, threads);
    expect_hits(hits, found, n, k, want, label);
    free(hits);
    free(found);
}

Test(search, exact_float_equals_brute_force) {
    int64_t nq, d;
    float *q = load("queries.npy", &nq, &d);
    ember_index *ix;
    cr_assert_eq(ember_index_open(DATA "/corpus.npy", &ix), EMBER_OK, "%s", ember_last_error());
    ember_index_info info;
    ember_index_get_info(ix, &info);
    cr_assert(info.rows == 300 && info.dim == d && info.precision == EMBER_PRECISION_FLOAT32 && !info.model_name);
    json_t *e = expected();
    for (int threads = 1; threads <= 3; threads += 2) {
        search_case(ix, q, (int32_t)nq, (int32_t)d, 5, 4, threads,
                    json_object_get(json_object_get(json_object_get(e, "k"), "5"), "exact"), "exact");
        search_case(ix, q, (int32_t)nq, (int32_t)d, 400, 4, threads,
                    json_object_get(json_object_get(json_object_get(e, "k"), "400"), "exact"), "exact");
    }
    json_decref(e);
    ember_index_free(ix);
    free(q);
}

/* Rows 10 and 200 are the same vector: the lower row first, both found. */
Test(search, ties_by_the_lower_row) {
    int64_t n, d;
    float *corpus = load("corpus.npy", &n, &d);
    ember_index *ix;
    cr_assert_eq(ember_index_wrap(corpus, n, (int32_t)d, &ix), EMBER_OK);
    ember_hit hits[2];
    int32_t found;
    ember_search_params sp = ember_search_default_params();
    sp.k = 2;
    for (int threads = 1; threads <= 4; threads++) {
        sp.n_threads = threads;
        cr_assert_eq(ember_search(ix, corpus + 200 * d, 1, (int32_t)d, &sp, hits, &found), EMBER_OK);
        cr_assert(found == 2 && hits[0].row == 10 && hits[1].row == 200 && hits[0].score == hits[1].score,
                  "%d threads: rows %lld, %lld", threads, (long long)hits[0].row, (long long)hits[1].row);
    }
    ember_index_free(ix);
    free(corpus);
}

/* The corpus quantized as ember embed stores it, one .npy plus the
 * description beside it, in dir. */
static void write_compact(const char *dir, const float *corpus, int64_t n, int32_t d, ember_precision p) {
    float *ranges = malloc(2 * (size_t)d * sizeof *ranges);
    ranges_init(ranges, d);
    ranges_update(ranges, corpus, n, d);
    void *rows = malloc((size_t)n * precision_row_bytes(p, d));
    quantize_rows(rows, corpus, n, d, p, ranges);
    char path[4096];
    snprintf(path, sizeof path, "%s/vectors.npy", dir);
    npy_writer w;
    cr_assert_eq(npy_open(&w, path, precision_npy_dtype(p), precision_cols(p, d)), EMBER_OK);
    cr_assert_eq(npy_write_raw(&w, rows, n), EMBER_OK);
    cr_assert_eq(npy_close(&w), EMBER_OK);
    cr_assert_eq(sidecar_write(path, p, d, "synthetic", d, "mean", 1, precision_needs_ranges(p) ? ranges : NULL),
                 EMBER_OK);
    free(rows);
    free(ranges);
}

static void compact_case(ember_precision p, const char *key, int32_t rescore) {
    int64_t n, d, nq, dq;
    float *corpus = load("corpus.npy", &n, &d), *q = load("queries.npy", &nq, &dq);
    char *dir = copy_dir(DATA);
    write_compact(dir, corpus, n, (int32_t)d, p);
    char path[4096];
    snprintf(path, sizeof path, "%s/vectors.npy", dir);
    ember_index *ix;
    cr_assert_eq(ember_index_open(path, &ix), EMBER_OK, "%s", ember_last_error());
    ember_index_info info;
    ember_index_get_info(ix, &info);
    cr_assert(info.precision == p && info.dim == d && info.model_name && !strcmp(info.model_name, "synthetic"));
    json_t *e = expected();
    for (int threads = 1; threads <= 2; threads++) {
        search_case(ix, q, (int32_t)nq, (int32_t)d, 5, rescore, threads,
                    json_object_get(json_object_get(json_object_get(e, "k"), "5"), key), key);
        search_case(ix, q, (int32_t)nq, (int32_t)d, 400, rescore, threads,
                    json_object_get(json_object_get(json_object_get(e, "k"), "400"), key), key);
    }
    json_decref(e);
    ember_index_free(ix);
    remove_dir(dir);
    free(corpus);
    free(q);
}

Test(search, int8_candidates_then_rescored) { compact_case(EMBER_PRECISION_INT8, "int8", 2); }
Test(search, ubinary_candidates_then_rescored) { compact_case(EMBER_PRECISION_UBINARY, "ubinary", 3); }

/* binary stores each byte minus 128: the same bits, the same hits */
Test(search, binary_as_ubinary) { compact_case(EMBER_PRECISION_BINARY, "ubinary", 3); }

Test(search, bad_arguments_are_refused) {
    int64_t n, d;
    float *corpus = load("corpus.npy", &n, &d);
    ember_index *ix;
    cr_assert_eq(ember_index_wrap(corpus, n, (int32_t)d, &ix), EMBER_OK);
    ember_hit hits[10];
    int32_t found[1] = {-1};
    cr_assert_eq(ember_search(ix, corpus, 0, (int32_t)d, NULL, hits, found), EMBER_OK, "no queries: nothing to do");
    cr_assert_eq(ember_search(ix, corpus, 1, (int32_t)d + 1, NULL, hits, found), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(ember_last_error(), "25 dimensions, the corpus 24"), "%s", ember_last_error());
    ember_search_params sp = ember_search_default_params();
    sp.k = 0;
    cr_assert_eq(ember_search(ix, corpus, 1, (int32_t)d, &sp, hits, found), EMBER_ERR_INVALID_ARGUMENT);
    float nan_q[24];
    memcpy(nan_q, corpus, sizeof nan_q);
    nan_q[3] = NAN;
    cr_assert_eq(ember_search(ix, nan_q, 1, (int32_t)d, NULL, hits, found), EMBER_ERR_INVALID_ARGUMENT);
    ember_index_free(ix);
    /* an empty corpus: found 0 */
    cr_assert_eq(ember_index_wrap(NULL, 0, (int32_t)d, &ix), EMBER_OK);
    cr_assert_eq(ember_search(ix, corpus, 1, (int32_t)d, NULL, hits, found), EMBER_OK);
    cr_assert_eq(found[0], 0);
    ember_index_free(ix);
    /* files that are not what they claim */
    cr_assert_eq(ember_index_open("/no/such/vectors", &ix), EMBER_ERR_IO);
    cr_assert_eq(ember_index_open(DATA "/expected.json", &ix), EMBER_ERR_FORMAT);
    cr_assert(strstr(ember_last_error(), "expected.json: not a .npy file"), "%s", ember_last_error());
    free(corpus);
}

/* ---- the shards of an interrupted, then resumed, run --------------------------------------------- */

static atomic_int polls;
static int cancel_soon(void *user) {
    (void)user;
    return atomic_fetch_add(&polls, 1) > 700;
}

Test(search, resumed_shards_search_as_one_run) {
    char *dir = copy_dir(SRC_PATH("tests/data/tiny-bert"));
    char corpus[4200], shards[4200], one[4200];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    FILE *f = fopen(corpus, "w");
    for (int i = 0; i < 1200; i++) fprintf(f, "line %d: %s\n", i, i % 3 ? "the quick brown fox" : "lazy dogs sleep");
    fclose(f);
    snprintf(shards, sizeof shards, "%s/shards", dir);
    snprintf(one, sizeof one, "%s/one.npy", dir);
    ember_model *m = load_model(dir);
    ember_embed_options o = ember_embed_default_options();
    o.input = corpus;
    o.format = EMBER_OUTPUT_NPY;
    o.output = one;
    cr_assert_eq(ember_embed_file(&m, 1, &o, NULL), EMBER_OK, "%s", ember_last_error());
    o.output = shards;
    o.shard_rows = 250;
    o.window = 100;
    o.cancel = cancel_soon;
    ember_embed_result r;
    cr_assert_eq(ember_embed_file(&m, 1, &o, &r), EMBER_ERR_CANCELLED);
    cr_assert(r.committed_shards > 0 && r.committed_rows < 1200, "%d shards", r.committed_shards);
    ember_index *part, *whole, *single;
    cr_assert_eq(ember_index_open(shards, &part), EMBER_OK, "%s", ember_last_error());
    ember_index_info info;
    ember_index_get_info(part, &info);
    cr_assert(!info.complete && info.rows == r.committed_rows, "an unfinished run: %lld rows", (long long)info.rows);
    ember_index_free(part);
    o.cancel = NULL;
    o.resume = 1;
    cr_assert_eq(ember_embed_file(&m, 1, &o, &r), EMBER_OK, "%s", ember_last_error());
    cr_assert_eq(ember_index_open(shards, &whole), EMBER_OK, "%s", ember_last_error());
    cr_assert_eq(ember_index_open(one, &single), EMBER_OK, "%s", ember_last_error());
    ember_model_info mi;
    ember_model_get_info(m, &mi);
    ember_index_get_info(whole, &info);
    cr_assert(info.complete && info.rows == 1200 && info.n_shards == 5 && !strcmp(info.model_name, mi.name),
              "%lld rows in %d shards of %s", (long long)info.rows, info.n_shards, info.model_name);
    int64_t rows, cols;
    float *vecs = npy_read(one, &rows, &cols);
    const int32_t nq = 4, k = 7;
    ember_hit a[4 * 7], b[4 * 7];
    int32_t fa[4], fb[4];
    /* queries: rows from every shard */
    float *q = malloc((size_t)nq * cols * sizeof *q);
    for (int32_t i = 0; i < nq; i++) memcpy(q + i * cols, vecs + (size_t)(i * 333) * cols, (size_t)cols * sizeof *q);
    ember_search_params sp = ember_search_default_params();
    sp.k = k;
    cr_assert_eq(ember_search(whole, q, nq, (int32_t)cols, &sp, a, fa), EMBER_OK);
    cr_assert_eq(ember_search(single, q, nq, (int32_t)cols, &sp, b, fb), EMBER_OK);
    for (int32_t i = 0; i < nq; i++) {
        cr_assert(fa[i] == k && fb[i] == k);
        cr_assert(a[i * k].row == i * 333 || a[i * k].score == b[i * k].score, "query %d: best row %lld", i,
                  (long long)a[i * k].row);
    }
    if (mi.batch_invariant)
        cr_assert(memcmp(a, b, sizeof a) == 0, "the resumed shards and one uninterrupted file give other hits");
    else
        for (int32_t i = 0; i < nq * k; i++) cr_assert(fabsf(a[i].score - b[i].score) < 1e-5f);
    free(q);
    free(vecs);
    ember_index_free(whole);
    ember_index_free(single);
    ember_model_free(m);
    remove_dir(dir);
}

/* Rescored against the float vectors, with every row a candidate: exactly
 * the float search's hits, whatever the compact scores were. */
Test(search, rescore_against_float_vectors) {
    int64_t n, d, nq, dq;
    float *corpus = load("corpus.npy", &n, &d), *q = load("queries.npy", &nq, &dq);
    char *dir = copy_dir(DATA);
    write_compact(dir, corpus, n, (int32_t)d, EMBER_PRECISION_BINARY);
    char path[4096];
    snprintf(path, sizeof path, "%s/vectors.npy", dir);
    ember_index *bits, *floats, *other;
    cr_assert_eq(ember_index_open(path, &bits), EMBER_OK, "%s", ember_last_error());
    cr_assert_eq(ember_index_open(DATA "/corpus.npy", &floats), EMBER_OK);
    json_t *e = expected();
    ember_hit hits[7 * 5];
    int32_t found[7];
    ember_search_params sp = ember_search_default_params();
    sp.k = 5;
    sp.rescore = 60; /* 300 candidates: every row */
    sp.rescore_vectors = floats;
    cr_assert_eq(ember_search(bits, q, (int32_t)nq, (int32_t)d, &sp, hits, found), EMBER_OK, "%s", ember_last_error());
    expect_hits(hits, found, (int32_t)nq, 5, json_object_get(json_object_get(json_object_get(e, "k"), "5"), "exact"),
                "binary rescored against float32");
    /* vectors of another corpus are refused */
    cr_assert_eq(ember_index_wrap(corpus, n - 1, (int32_t)d, &other), EMBER_OK);
    sp.rescore_vectors = other;
    cr_assert_eq(ember_search(bits, q, 1, (int32_t)d, &sp, hits, found), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(ember_last_error(), "299 x 24"), "%s", ember_last_error());
    json_decref(e);
    ember_index_free(other);
    ember_index_free(bits);
    ember_index_free(floats);
    remove_dir(dir);
    free(corpus);
    free(q);
}
