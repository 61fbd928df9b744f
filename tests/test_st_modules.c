/* sentence-transformers modules after pooling: the tiny model with two Dense
 * modules (tools/make_tiny_st_dense.py) against sentence-transformers' own
 * embeddings, and the module lists ember cannot run, each an error naming
 * the module. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "model/safetensors.h"
#include "test_util.h"

#define DENSE_DIR SRC_PATH("tests/data/tiny-st-dense")
#define DENSE_REF SRC_PATH("tests/data/tiny-st-dense-ref")

/* A tensor of a Dense module's weights file, as fp32 (numel floats). */
static float *dense_weight(const char *path, const char *name, int64_t numel) {
    safetensors_file f;
    cr_assert_eq(safetensors_open(&f, path), EMBER_OK, "%s", ember_last_error());
    const st_tensor *t = safetensors_find(&f, name);
    cr_assert(t && t->numel == numel, "%s: %s", path, name);
    float *out = malloc((size_t)numel * sizeof *out);
    cr_assert_eq(st_tensor_to_f32(t, out), EMBER_OK);
    safetensors_close(&f);
    return out;
}

/* Every row's cosine with the reference's is at least 0.99999. */
static void expect_rows(const char *what, const float *got, const float *ref, int32_t n, int32_t d) {
    double worst = 1.0;
    for (int32_t i = 0; i < n; i++) {
        double c = ember_cosine(got + (size_t)i * d, ref + (size_t)i * d, d);
        if (c < worst) worst = c;
    }
    float diff = max_abs_diff(got, ref, (size_t)n * d);
    printf("%s: %d rows x %d, lowest cosine %.8f, max |ember - sentence-transformers| %.3g\n", what, n, d, worst,
           (double)diff);
    cr_assert(worst >= 0.99999, "%s: cosine %.8f < 0.99999", what, worst);
}

Test(st_modules, dense_modules_match_sentence_transformers) {
    size_t nt;
    char **texts = json_strings(DENSE_REF "/texts.json", "texts", &nt);
    const int32_t n = (int32_t)nt;
    int64_t rows, cols;
    float *ref = npy_read(DENSE_REF "/embeddings.npy", &rows, &cols);
    float *raw = npy_read(DENSE_REF "/unnormalized.npy", &rows, &cols);
    cr_assert_eq(rows, n);
    cr_assert_eq(cols, 32);

    ember_model *m = load_model(DENSE_DIR);
    ember_model_info info;
    ember_model_get_info(m, &info);
    cr_assert_eq(info.dim, 32, "the vectors are the last Dense module's out_features");
    cr_assert_eq(info.hidden_size, 64);
    cr_assert_eq(info.normalize, 1);
    cr_assert_str_eq(info.modules, "Pooling(mean) Dense(64->48, Tanh) Dense(48->32, Identity, no bias) Normalize");

    float *got = calloc((size_t)n * 32, sizeof *got);
    cr_assert_eq(ember_encode(m, (const char *const *)texts, NULL, n, NULL, got, NULL), EMBER_OK, "%s",
                 ember_last_error());
    expect_rows("Dense x2 + Normalize", got, ref, n, 32);

    /* --no-normalize drops the final Normalize only: the Dense modules still run */
    ember_encode_params p = ember_encode_default_params();
    p.normalize = EMBER_NORMALIZE_OFF;
    cr_assert_eq(ember_encode(m, (const char *const *)texts, NULL, n, &p, got, NULL), EMBER_OK);
    expect_rows("Dense x2, no Normalize", got, raw, n, 32);
    for (int32_t i = 0; i < n; i++) {
        float a = 0, b = 0;
        for (int k = 0; k < 32; k++) a += got[i * 32 + k] * got[i * 32 + k], b += raw[i * 32 + k] * raw[i * 32 + k];
        cr_assert(fabsf(sqrtf(a) - sqrtf(b)) <= 1e-4f * sqrtf(b), "row %d: norm %g, expected %g", i, sqrtf(a), sqrtf(b));
    }

    /* pre-tokenized sequences (the server's and ember embed's path) give the same vectors,
     * and the token vectors stay the hidden size */
    ember_token toks[64];
    int32_t cnt;
    cr_assert_eq(ember_tokenize(m, texts[0], -1, NULL, 0, NULL, toks, 64, &cnt, NULL), EMBER_OK);
    int32_t ids[64];
    for (int32_t k = 0; k < cnt; k++) ids[k] = toks[k].id;
    ember_sequence seq = {ids, NULL, cnt, 0};
    float pooled[32], *hidden = calloc((size_t)cnt * 64, sizeof *hidden);
    cr_assert_eq(ember_encode_sequences(m, &seq, 1, NULL, pooled, hidden), EMBER_OK, "%s", ember_last_error());
    expect_rows("ember_encode_sequences", pooled, ref, 1, 32);
    ember_token_embeddings *e;
    cr_assert_eq(ember_encode_tokens(m, (const char *const *)texts, NULL, 1, NULL, &e, NULL), EMBER_OK);
    cr_assert_eq(e->dim, 64);
    cr_assert_eq(e->n_tokens, cnt);
    cr_assert(max_abs_diff(e->data, hidden, (size_t)cnt * 64) <= 1e-5f);
    ember_token_embeddings_free(e);
    free(hidden);
    free(got);
    free(ref);
    free(raw);
    free_lines(texts, nt);
    ember_model_free(m);
}

/* A copy of the fixture with modules.json (and optionally one file) replaced;
 * the status and message of loading it. */
static ember_status load_variant(const char *modules_json, const char *file, const char *content, char *msg,
                                 size_t cap) {
    char *dir = copy_dir(DENSE_DIR);
    char path[512];
    if (modules_json) {
        snprintf(path, sizeof path, "%s/modules.json", dir);
        write_file(path, modules_json);
    }
    if (file) {
        snprintf(path, sizeof path, "%s/%s", dir, file);
        if (content) write_file(path, content);
        else cr_assert_eq(unlink(path), 0, "%s", path);
    }
    ember_model *m = NULL;
    ember_model_params mp = ember_model_default_params();
    ember_status st = ember_model_load(dir, &mp, &m);
    snprintf(msg, cap, "%s", st ? ember_last_error() : "");
    ember_model_free(m);
    remove_dir(dir);
    return st;
}

#define T_ "{\"idx\": 0, \"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"}"
#define P_ "{\"idx\": 1, \"path\": \"1_Pooling\", \"type\": \"sentence_transformers.models.Pooling\"}"
#define D1_ "{\"idx\": 2, \"path\": \"2_Dense\", \"type\": \"sentence_transformers.models.Dense\"}"
#define D2_ "{\"idx\": 3, \"path\": \"3_Dense\", \"type\": \"sentence_transformers.models.Dense\"}"
#define N_ "{\"idx\": 4, \"path\": \"4_Normalize\", \"type\": \"sentence_transformers.models.Normalize\"}"

Test(st_modules, modules_ember_cannot_run_are_errors_naming_them) {
    char msg[1024];
    ember_status st = load_variant("[" T_ "," P_ "," D1_ ","
                                   "{\"idx\": 3, \"path\": \"3_LayerNorm\", \"type\": "
                                   "\"sentence_transformers.models.LayerNorm\"}," D2_ "," N_ "]",
                                   NULL, NULL, msg, sizeof msg);
    cr_assert_eq(st, EMBER_ERR_UNSUPPORTED, "%s", msg);
    cr_assert(strstr(msg, "module 'sentence_transformers.models.LayerNorm' is not supported"), "%s", msg);

    st = load_variant("[" T_ "," D1_ "," P_ "," D2_ "," N_ "]", NULL, NULL, msg, sizeof msg);
    cr_assert_eq(st, EMBER_ERR_UNSUPPORTED, "%s", msg);
    cr_assert(strstr(msg, "module 1 'sentence_transformers.models.Dense' cannot run where it is"), "%s", msg);

    st = load_variant("[" T_ "," P_ "," D2_ "," D1_ "," N_ "]", NULL, NULL, msg, sizeof msg);
    cr_assert_eq(st, EMBER_ERR_FORMAT, "%s", msg);
    cr_assert(strstr(msg, "3_Dense/config.json: in_features 48 does not match the 64-dim vectors"), "%s", msg);

    st = load_variant(NULL, "2_Dense/config.json",
                      "{\"in_features\": 64, \"out_features\": 48, \"bias\": true, \"activation_function\": "
                      "\"torch.nn.modules.activation.Softplus\"}",
                      msg, sizeof msg);
    cr_assert_eq(st, EMBER_ERR_UNSUPPORTED, "%s", msg);
    cr_assert(strstr(msg, "activation_function 'torch.nn.modules.activation.Softplus' is not supported"), "%s", msg);
}

Test(st_modules, a_dense_module_in_pytorch_model_bin_is_a_clear_error) {
    char *dir = copy_dir(DENSE_DIR);
    char from[512], to[512];
    snprintf(from, sizeof from, "%s/2_Dense/model.safetensors", dir);
    snprintf(to, sizeof to, "%s/2_Dense/pytorch_model.bin", dir);
    cr_assert_eq(rename(from, to), 0);
    ember_model *m = NULL;
    ember_model_params mp = ember_model_default_params();
    ember_status st = ember_model_load(dir, &mp, &m);
    cr_assert_eq(st, EMBER_ERR_UNSUPPORTED);
    cr_assert(strstr(ember_last_error(), "2_Dense/pytorch_model.bin") &&
                  strstr(ember_last_error(), "save them as model.safetensors"),
              "%s", ember_last_error());
    cr_assert_null(m);
    remove_dir(dir);
}

Test(st_modules, dropout_is_the_identity_and_a_middle_normalize_runs) {
    /* Dropout anywhere after the Transformer changes nothing */
    size_t nt;
    char **texts = json_strings(DENSE_REF "/texts.json", "texts", &nt);
    const int32_t n = (int32_t)nt;
    int64_t rows, cols;
    float *ref = npy_read(DENSE_REF "/embeddings.npy", &rows, &cols);
    char *dir = copy_dir(DENSE_DIR);
    char path[512];
    snprintf(path, sizeof path, "%s/modules.json", dir);
    write_file(path, "[" T_ "," P_ ",{\"idx\": 2, \"path\": \"2_Dropout\", \"type\": "
                     "\"sentence_transformers.models.Dropout\"}," D1_ "," D2_ "," N_ "]");
    ember_model *m = load_model(dir);
    float *got = calloc((size_t)n * 32, sizeof *got);
    cr_assert_eq(ember_encode(m, (const char *const *)texts, NULL, n, NULL, got, NULL), EMBER_OK);
    expect_rows("with Dropout", got, ref, n, 32);
    ember_model_free(m);

    /* a Normalize before a Dense is part of the computation, not the final switch */
    write_file(path, "[" T_ "," P_ "," N_ "," D1_ "," D2_ "]");
    m = load_model(dir);
    ember_model_info info;
    ember_model_get_info(m, &info);
    cr_assert_eq(info.normalize, 0);
    cr_assert_str_eq(info.modules, "Pooling(mean) Normalize Dense(64->48, Tanh) Dense(48->32, Identity, no bias)");
    float v1[32], v2[32];
    const char *a[] = {"the quick brown fox"}, *b[] = {"the quick brown fox the quick brown fox"};
    cr_assert_eq(ember_encode(m, a, NULL, 1, NULL, v1, NULL), EMBER_OK);
    cr_assert_eq(ember_encode(m, b, NULL, 1, NULL, v2, NULL), EMBER_OK);
    ember_model_free(m);
    /* the same, by hand: mean pooling's vector, normalised, through both Dense modules */
    ember_model *plain = load_model(DENSE_DIR);
    ember_token_embeddings *e;
    cr_assert_eq(ember_encode_tokens(plain, a, NULL, 1, NULL, &e, NULL), EMBER_OK);
    double x[64] = {0}, nrm = 0;
    for (int32_t t = 0; t < e->n_tokens; t++)
        for (int k = 0; k < 64; k++) x[k] += e->data[(size_t)t * 64 + k] / e->n_tokens;
    for (int k = 0; k < 64; k++) nrm += x[k] * x[k];
    for (int k = 0; k < 64; k++) x[k] /= sqrt(nrm);
    ember_token_embeddings_free(e);
    ember_model_free(plain);
    remove_dir(dir);
    float *w1 = dense_weight(DENSE_DIR "/2_Dense/model.safetensors", "linear.weight", 48 * 64);
    float *b1 = dense_weight(DENSE_DIR "/2_Dense/model.safetensors", "linear.bias", 48);
    float *w2 = dense_weight(DENSE_DIR "/3_Dense/model.safetensors", "linear.weight", 32 * 48);
    float y[48], z[32];
    for (int o = 0; o < 48; o++) {
        double acc = b1[o];
        for (int k = 0; k < 64; k++) acc += (double)w1[o * 64 + k] * x[k];
        y[o] = tanhf((float)acc);
    }
    for (int o = 0; o < 32; o++) {
        double acc = 0;
        for (int k = 0; k < 48; k++) acc += (double)w2[o * 48 + k] * y[k];
        z[o] = (float)acc;
    }
    expect_rows("Normalize before Dense, by hand", v1, z, 1, 32);
    cr_assert(v1[0] != v2[0] || v1[1] != v2[1], "different texts, same vector");
    float norm1 = 0;
    for (int k = 0; k < 32; k++) norm1 += v1[k] * v1[k];
    cr_assert(fabsf(norm1 - 1.0f) > 1e-3f, "no final Normalize: the vector is not unit length (%g)", norm1);
    free(w1);
    free(b1);
    free(w2);
    free(got);
    free(ref);
    free_lines(texts, nt);
}
