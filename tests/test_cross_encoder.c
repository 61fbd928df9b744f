/* Cross-encoders: the tiny random BertForSequenceClassification models
 * (tools/make_tiny_cross_encoder.py) against transformers' logits and
 * sentence-transformers CrossEncoder's scores for the same pairs, long ones
 * cut longest first; single texts; the model's labels; the errors. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "test_util.h"

#define CE1_DIR SRC_PATH("tests/data/tiny-cross-encoder")
#define CE3_DIR SRC_PATH("tests/data/tiny-cross-encoder-3")
#define CE_REF SRC_PATH("tests/data/tiny-cross-encoder-ref")
#define TOL 2e-5f

/* pairs.json: [[query, text], ...] as two arrays of n strings. */
static int32_t ref_pairs(char ***a, char ***b) {
    json_error_t err;
    json_t *root = json_load_file(CE_REF "/pairs.json", 0, &err);
    cr_assert(root, "pairs.json: %s", err.text);
    int32_t n = (int32_t)json_array_size(root);
    *a = calloc((size_t)n, sizeof **a);
    *b = calloc((size_t)n, sizeof **b);
    for (int32_t i = 0; i < n; i++) {
        (*a)[i] = strdup(json_string_value(json_array_get(json_array_get(root, (size_t)i), 0)));
        (*b)[i] = strdup(json_string_value(json_array_get(json_array_get(root, (size_t)i), 1)));
    }
    json_decref(root);
    return n;
}

static void free_pairs(char **a, char **b, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        free(a[i]);
        free(b[i]);
    }
    free(a);
    free(b);
}

static void expect_close(const char *what, const float *got, const char *ref_path, int64_t n, int64_t d) {
    int64_t rows, cols;
    float *ref = npy_read(ref_path, &rows, &cols);
    cr_assert(rows == n && cols == d, "%s: reference is %lld x %lld, expected %lld x %lld", ref_path,
              (long long)rows, (long long)cols, (long long)n, (long long)d);
    float diff = max_abs_diff(got, ref, (size_t)(n * d));
    printf("%s: %lld x %lld, max |ember - reference| %.3g\n", what, (long long)n, (long long)d, (double)diff);
    for (int64_t i = 0; i < n * d && i < 4; i++) printf("  %.6f vs %.6f\n", (double)got[i], (double)ref[i]);
    cr_assert(diff <= TOL, "%s: max diff %.3g > %.3g", what, (double)diff, (double)TOL);
    free(ref);
}

Test(cross_encoder, reranker_scores_as_crossencoder_and_logits_as_transformers) {
    char **a, **b;
    int32_t n = ref_pairs(&a, &b);
    ember_model *m = load_model(CE1_DIR);
    ember_model_info info;
    cr_assert_eq(ember_model_get_info(m, &info), EMBER_OK);
    cr_assert_eq(info.num_labels, 1);
    cr_assert_eq(info.dim, 1);
    cr_assert_str_eq(info.labels[0], "LABEL_0");
    cr_assert(strstr(info.modules, "Classifier(64->1)"), "%s", info.modules);
    float *s = malloc((size_t)n * sizeof *s);
    ember_text_stats *st = calloc((size_t)n, sizeof *st);
    cr_assert_eq(ember_score_pairs(m, (const char *const *)a, (const char *const *)b, n, NULL, s, st), EMBER_OK, "%s",
                 ember_last_error());
    expect_close("sigmoid scores (CrossEncoder.predict)", s, CE_REF "/scores1.npy", n, 1);
    cr_assert(st[n - 1].truncated && st[n - 1].n_tokens == 64, "the long pair is cut to 64 tokens");
    ember_score_params p = ember_score_default_params();
    p.raw = 1;
    cr_assert_eq(ember_score_pairs(m, (const char *const *)a, (const char *const *)b, n, &p, s, NULL), EMBER_OK);
    expect_close("raw logits (transformers)", s, CE_REF "/logits1.npy", n, 1);
    /* one at a time: the same scores, whatever else is in the batch */
    for (int32_t i = 0; i < n; i++) {
        float one;
        cr_assert_eq(ember_score_pairs(m, (const char *const *)a + i, (const char *const *)b + i, 1, &p, &one, NULL),
                     EMBER_OK);
        cr_assert(fabsf(one - s[i]) <= TOL, "pair %d alone: %g, in the batch: %g", i, (double)one, (double)s[i]);
    }
    /* truncation off: the long pair is an error naming it */
    p.truncate = 0;
    cr_assert_eq(ember_score_pairs(m, (const char *const *)a, (const char *const *)b, n, &p, s, NULL),
                 EMBER_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(ember_last_error(), "pair 6"), "%s", ember_last_error());
    free(s);
    free(st);
    ember_model_free(m);
    free_pairs(a, b, n);
}

Test(cross_encoder, three_labels_pairs_and_single_texts) {
    char **a, **b;
    int32_t n = ref_pairs(&a, &b);
    ember_model *m = load_model(CE3_DIR);
    ember_model_info info;
    ember_model_get_info(m, &info);
    cr_assert_eq(info.num_labels, 3);
    cr_assert_str_eq(info.labels[0], "contradiction");
    cr_assert_str_eq(info.labels[2], "neutral");
    float *s = malloc((size_t)n * 3 * sizeof *s);
    /* num_labels > 1: the default is the logits, as CrossEncoder's */
    cr_assert_eq(ember_score_pairs(m, (const char *const *)a, (const char *const *)b, n, NULL, s, NULL), EMBER_OK);
    expect_close("3-label logits", s, CE_REF "/logits3.npy", n, 3);
    cr_assert_eq(ember_score_pairs(m, (const char *const *)a, NULL, n, NULL, s, NULL), EMBER_OK);
    expect_close("3-label logits of single texts", s, CE_REF "/single3.npy", n, 3);
    free(s);
    ember_model_free(m);
    free_pairs(a, b, n);
}

Test(cross_encoder, an_encoder_is_no_cross_encoder) {
    ember_model *m = load_model(TINY_DIR);
    ember_model_info info;
    ember_model_get_info(m, &info);
    cr_assert_eq(info.num_labels, 0);
    cr_assert_null(info.labels);
    const char *a = "q", *b = "d";
    float s;
    cr_assert_eq(ember_score_pairs(m, &a, &b, 1, NULL, &s, NULL), EMBER_ERR_UNSUPPORTED);
    cr_assert(strstr(ember_last_error(), "not a cross-encoder"), "%s", ember_last_error());
    ember_model_free(m);
}
