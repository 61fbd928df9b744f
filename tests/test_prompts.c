/* Prompts (config_sentence_transformers.json's prompts and default_prompt_name,
 * ember_encode_params.prompt / prompt_name) and Pooling's include_prompt: the
 * tiny models of tools/make_tiny_st_prompts.py against sentence-transformers'
 * own encode(), case by case, and the errors. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "test_util.h"

#define REF SRC_PATH("tests/data/tiny-st-prompts-ref")

/* ember_encode with prompt_name / prompt against <model>.<case>.npy: every row's cosine >= 0.99999. */
static void check_case(ember_model *m, const char *model, const char *cas, const char *prompt_name,
                       const char *prompt) {
    size_t nt;
    char **texts = json_strings(REF "/texts.json", "texts", &nt);
    const int32_t n = (int32_t)nt;
    char path[512];
    snprintf(path, sizeof path, "%s/%s.%s.npy", REF, model, cas);
    int64_t rows, cols;
    float *ref = npy_read(path, &rows, &cols);
    cr_assert_eq(rows, n);
    cr_assert_eq(cols, 64);
    float *got = calloc((size_t)n * 64, sizeof *got);
    ember_encode_params p = ember_encode_default_params();
    p.prompt_name = prompt_name;
    p.prompt = prompt;
    cr_assert_eq(ember_encode(m, (const char *const *)texts, NULL, n, &p, got, NULL), EMBER_OK, "%s %s: %s", model,
                 cas, ember_last_error());
    double worst = 1;
    for (int32_t i = 0; i < n; i++) {
        double c = ember_cosine(got + (size_t)i * 64, ref + (size_t)i * 64, 64);
        if (c < worst) worst = c;
    }
    printf("%s %s: lowest cosine %.8f, max |diff| %.3g\n", model, cas, worst,
           (double)max_abs_diff(got, ref, (size_t)n * 64));
    cr_assert(worst >= 0.99999, "%s %s: cosine %.8f < 0.99999", model, cas, worst);
    free(got);
    free(ref);
    free_lines(texts, nt);
}

static void check_model(const char *model) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/%s", SRC_PATH("tests/data"), model);
    ember_model *m = load_model(dir);
    check_case(m, model, "default", NULL, NULL);
    check_case(m, model, "query", "query", NULL);
    check_case(m, model, "passage", "passage", NULL);
    check_case(m, model, "custom", NULL, "Represent this sentence for searching relevant passages: ");
    check_case(m, model, "custom", "query", "Represent this sentence for searching relevant passages: ");
    check_case(m, model, "none", NULL, "");
    check_case(m, model, "none", "empty", NULL);
    ember_model_free(m);
}

Test(prompts, include_prompt_true_matches_sentence_transformers) {
    check_model("tiny-st-prompts");
}

Test(prompts, include_prompt_false_matches_sentence_transformers) {
    check_model("tiny-st-prompts-exclude");
}

Test(prompts, include_prompt_false_with_cls_pooling_matches_sentence_transformers) {
    /* the vector is the first token after the prompt's */
    check_model("tiny-st-prompts-cls");
}

Test(prompts, the_cases_differ) {
    /* the references would not catch a prompt ignored, or include_prompt ignored, if these were equal */
    int64_t r, c;
    float *a = npy_read(REF "/tiny-st-prompts.query.npy", &r, &c);
    float *b = npy_read(REF "/tiny-st-prompts.none.npy", &r, &c);
    float *x = npy_read(REF "/tiny-st-prompts-exclude.query.npy", &r, &c);
    for (int64_t i = 0; i < r; i++) {
        cr_assert(ember_cosine(a + i * c, b + i * c, (int32_t)c) < 0.9999, "row %lld", (long long)i);
        cr_assert(ember_cosine(a + i * c, x + i * c, (int32_t)c) < 0.9999, "row %lld", (long long)i);
    }
    free(a);
    free(b);
    free(x);
}

Test(prompts, info_lists_the_prompts) {
    ember_model *m = load_model(SRC_PATH("tests/data/tiny-st-prompts"));
    ember_model_info info;
    cr_assert_eq(ember_model_get_info(m, &info), EMBER_OK);
    cr_assert_str_eq(info.prompts, "document, empty, passage, query");
    cr_assert_str_eq(info.default_prompt_name, "query");
    cr_assert_eq(info.include_prompt, 1);
    ember_model_free(m);
    m = load_model(SRC_PATH("tests/data/tiny-st-prompts-exclude"));
    cr_assert_eq(ember_model_get_info(m, &info), EMBER_OK);
    cr_assert_null(info.default_prompt_name);
    cr_assert_eq(info.include_prompt, 0);
    ember_model_free(m);
}

Test(prompts, unknown_name_is_an_error_listing_the_prompts) {
    ember_model *m = load_model(SRC_PATH("tests/data/tiny-st-prompts"));
    const char *t = "hello";
    float v[64];
    ember_encode_params p = ember_encode_default_params();
    p.prompt_name = "quary";
    cr_assert_eq(ember_encode(m, &t, NULL, 1, &p, v, NULL), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(ember_last_error(), "'quary'") && strstr(ember_last_error(), "document, empty, passage, query"),
              "%s", ember_last_error());
    ember_model_free(m);
    m = load_model(SRC_PATH("tests/data/tiny-bert"));
    cr_assert_eq(ember_encode(m, &t, NULL, 1, &p, v, NULL), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(ember_last_error(), "no prompts"), "%s", ember_last_error());
    ember_model_free(m);
}

/* tiny-st-prompts with its config_sentence_transformers.json (or 1_Pooling/config.json)
 * replaced: the status of loading it and the message. */
static ember_status load_with(const char *file, const char *content, char *msg, size_t cap) {
    char *dir = copy_dir(SRC_PATH("tests/data/tiny-st-prompts"));
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    write_file(path, content);
    ember_model *m = NULL;
    ember_model_params mp = ember_model_default_params();
    ember_status st = ember_model_load(dir, &mp, &m);
    snprintf(msg, cap, "%s", st ? ember_last_error() : "");
    ember_model_free(m);
    remove_dir(dir);
    return st;
}

Test(prompts, broken_prompt_configs_are_named) {
    char msg[1024];
    static const struct {
        const char *file, *content, *says;
    } cases[] = {
        {"config_sentence_transformers.json", "{\"prompts\": {\"q\": \"q: \"}, \"default_prompt_name\": \"query\"}",
         "default_prompt_name 'query' is not among the prompts (q)"},
        {"config_sentence_transformers.json", "{\"prompts\": [\"q: \"]}", "prompts must be an object"},
        {"config_sentence_transformers.json", "{\"prompts\": {\"q\": 3}}", "prompt 'q' is not a string"},
        {"config_sentence_transformers.json", "{\"prompts\": {}, \"default_prompt_name\": 3}",
         "default_prompt_name must be a string or null"},
        {"1_Pooling/config.json", "{\"pooling_mode\": \"mean\", \"include_prompt\": \"no\"}",
         "include_prompt must be true or false"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cr_assert_eq(load_with(cases[i].file, cases[i].content, msg, sizeof msg), EMBER_ERR_FORMAT, "case %zu", i);
        cr_assert(strstr(msg, cases[i].says) && strstr(msg, cases[i].file), "case %zu: %s", i, msg);
    }
    /* null prompts and default: no prompts, as sentence-transformers reads them */
    cr_assert_eq(load_with("config_sentence_transformers.json", "{\"prompts\": null, \"default_prompt_name\": null}",
                           msg, sizeof msg),
                 EMBER_OK, "%s", msg);
}

Test(prompts, tokens_made_elsewhere_with_pool_skip) {
    /* what the server and ember embed do: ember_tokenize with the prompt, then
     * ember_encode_sequences with the prompt's pool_skip (pooled and hidden asked for together) */
    ember_model *m = load_model(SRC_PATH("tests/data/tiny-st-prompts-exclude"));
    size_t nt;
    char **texts = json_strings(REF "/texts.json", "texts", &nt);
    int64_t rows, cols;
    float *ref = npy_read(REF "/tiny-st-prompts-exclude.query.npy", &rows, &cols);
    const char *prompt;
    int32_t skip = -1;
    cr_assert_eq(ember_resolve_prompt(m, "query", NULL, &prompt, &skip), EMBER_OK, "%s", ember_last_error());
    cr_assert_str_eq(prompt, "query: ");
    ember_token tok[64];
    int32_t cnt, ids[64];
    cr_assert_eq(ember_tokenize(m, prompt, -1, NULL, 0, NULL, tok, 64, &cnt, NULL), EMBER_OK);
    cr_assert(cnt > 2 && tok[cnt - 1].special, "[CLS] query: [SEP]");
    cr_assert_eq(skip, cnt - 1, "[CLS] and the prompt's pieces, not [SEP]: %d, got %d", cnt - 1, skip);
    ember_tokenize_params tp = ember_tokenize_default_params();
    tp.prompt = prompt;
    cr_assert_eq(ember_tokenize(m, texts[0], -1, NULL, 0, &tp, tok, 64, &cnt, NULL), EMBER_OK);
    for (int32_t k = 0; k < cnt; k++) ids[k] = tok[k].id;
    ember_sequence seq = {ids, NULL, cnt, skip};
    float pooled[64], *hidden = malloc((size_t)cnt * 64 * sizeof *hidden);
    cr_assert_eq(ember_encode_sequences(m, &seq, 1, NULL, pooled, hidden), EMBER_OK, "%s", ember_last_error());
    cr_assert(ember_cosine(pooled, ref, 64) >= 0.99999, "cosine %.8f", (double)ember_cosine(pooled, ref, 64));
    cr_assert_eq(ember_encode_sequences(m, &seq, 1, NULL, pooled, NULL), EMBER_OK);
    cr_assert(ember_cosine(pooled, ref, 64) >= 0.99999);
    seq.pool_skip = -1;
    cr_assert_eq(ember_encode_sequences(m, &seq, 1, NULL, pooled, NULL), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(ember_last_error(), "pool_skip"), "%s", ember_last_error());
    /* the model includes the prompt: nothing to leave out */
    ember_model *inc = load_model(SRC_PATH("tests/data/tiny-st-prompts"));
    cr_assert_eq(ember_resolve_prompt(inc, NULL, NULL, &prompt, &skip), EMBER_OK);
    cr_assert_str_eq(prompt, "query: ", "the model's default_prompt_name");
    cr_assert_eq(skip, 0);
    ember_model_free(inc);
    free(hidden);
    free(ref);
    free_lines(texts, nt);
    ember_model_free(m);
}
