/* Model directories, good and broken: each problem is a clear error naming
 * the file and what is wrong — never a crash. Each test copies the tiny
 * model to a temporary directory and breaks one thing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test_util.h"

/* Load dir; expect status and every fragment in the message. */
static void expect_load_error(const char *dir, ember_status want, const char *frag1, const char *frag2) {
    ember_model *m = (ember_model *)0x1;
    ember_status st = ember_model_load(dir, NULL, &m);
    const char *msg = ember_last_error();
    cr_log_info("%s -> %s", ember_status_str(st), msg);
    cr_assert_eq(st, want, "status %s (%s), expected %s", ember_status_str(st), msg, ember_status_str(want));
    cr_assert_null(m, "no model on failure");
    if (frag1) cr_assert(strstr(msg, frag1), "message '%s' lacks '%s'", msg, frag1);
    if (frag2) cr_assert(strstr(msg, frag2), "message '%s' lacks '%s'", msg, frag2);
}

static char *path_in(const char *dir, const char *name) {
    char *p = malloc(strlen(dir) + strlen(name) + 2);
    sprintf(p, "%s/%s", dir, name);
    return p;
}

/* Replace the first occurrence of `from` in dir/file with `to`. */
static void edit_file(const char *dir, const char *file, const char *from, const char *to) {
    char *p = path_in(dir, file);
    size_t n;
    char *s = read_file(p, &n);
    char *at = strstr(s, from);
    cr_assert(at, "%s has no '%s'", p, from);
    char *out = malloc(n + strlen(to) + 1);
    size_t pre = (size_t)(at - s);
    memcpy(out, s, pre);
    strcpy(out + pre, to);
    strcat(out, at + strlen(from));
    write_file(p, out);
    free(out);
    free(s);
    free(p);
}

Test(loader, tiny_loads) {
    ember_model *m = load_model(TINY_DIR);
    ember_model_info i;
    ember_model_get_info(m, &i);
    cr_assert_eq(i.dim, 64);
    cr_assert_eq(i.n_layers, 2);
    cr_assert_eq(i.vocab_size, 600);
    cr_assert_eq(i.device, EMBER_DEVICE_CPU);
    ember_model_free(m);
}

Test(loader, missing_directory) {
    expect_load_error("/nonexistent/model", EMBER_ERR_IO, "/nonexistent/model", "not found");
}

Test(loader, missing_config) {
    char *d = copy_dir(TINY_DIR);
    char *p = path_in(d, "config.json");
    unlink(p);
    expect_load_error(d, EMBER_ERR_IO, "config.json", "no such file");
    free(p);
    remove_dir(d);
}

Test(loader, malformed_config_json) {
    char *d = copy_dir(TINY_DIR);
    char *p = path_in(d, "config.json");
    write_file(p, "{\"model_type\": \"bert\", \"hidden_size\": 64,");
    expect_load_error(d, EMBER_ERR_FORMAT, "config.json", "malformed JSON");
    free(p);
    remove_dir(d);
}

Test(loader, unsupported_model_type) {
    char *d = copy_dir(TINY_DIR);
    edit_file(d, "config.json", "\"model_type\": \"bert\"", "\"model_type\": \"roberta\"");
    expect_load_error(d, EMBER_ERR_UNSUPPORTED, "model_type 'roberta'", "not supported");
    remove_dir(d);
}

/* Directories of encoders ember does not run, as published (their config.json
 * and the kind of tokenizer.json they ship): refused before their tokenizer
 * is read, naming the model_type, the class and what ember runs. */
static void expect_unsupported_architecture(const char *config, const char *tokenizer_json, const char *model_type,
                                            const char *cls) {
    char *d = copy_dir(TINY_DIR);
    char *p = path_in(d, "config.json");
    write_file(p, config);
    free(p);
    p = path_in(d, "vocab.txt");
    unlink(p);
    free(p);
    p = path_in(d, "tokenizer.json");
    write_file(p, tokenizer_json);
    free(p);
    char want[64];
    snprintf(want, sizeof want, "model_type '%s'", model_type);
    expect_load_error(d, EMBER_ERR_UNSUPPORTED, want, cls);
    const char *msg = ember_last_error(), *runs = ember_supported_architectures();
    cr_assert(strstr(msg, runs), "message '%s' does not list what ember runs ('%s')", msg, runs);
    cr_assert(strstr(runs, "bert (") && strstr(runs, "mpnet ("), "'%s'", runs);
    remove_dir(d);
}

Test(loader, xlm_roberta_is_refused_naming_what_ember_runs) {
    expect_unsupported_architecture(
        "{\"architectures\": [\"XLMRobertaModel\"], \"model_type\": \"xlm-roberta\", \"hidden_size\": 768,"
        " \"num_hidden_layers\": 12, \"num_attention_heads\": 12, \"intermediate_size\": 3072,"
        " \"max_position_embeddings\": 514, \"type_vocab_size\": 1, \"vocab_size\": 250002, \"pad_token_id\": 1,"
        " \"position_embedding_type\": \"absolute\", \"hidden_act\": \"gelu\", \"layer_norm_eps\": 1e-05}",
        "{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Precompiled\"}]},"
        " \"pre_tokenizer\": {\"type\": \"Metaspace\"}, \"model\": {\"type\": \"Unigram\", \"vocab\": []}}",
        "xlm-roberta", "XLMRobertaModel");
}

Test(loader, modernbert_is_refused_naming_what_ember_runs) {
    expect_unsupported_architecture(
        "{\"architectures\": [\"ModernBertModel\"], \"model_type\": \"modernbert\", \"hidden_size\": 768,"
        " \"num_hidden_layers\": 22, \"num_attention_heads\": 12, \"intermediate_size\": 1152,"
        " \"max_position_embeddings\": 8192, \"vocab_size\": 50368, \"hidden_activation\": \"gelu\","
        " \"global_rope_theta\": 160000.0, \"local_attention\": 128, \"norm_eps\": 1e-05}",
        "{\"normalizer\": {\"type\": \"NFC\"}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"},"
        " \"model\": {\"type\": \"BPE\", \"vocab\": {}, \"merges\": []}}",
        "modernbert", "ModernBertModel");
}

Test(loader, unsupported_activation) {
    char *d = copy_dir(TINY_DIR);
    edit_file(d, "config.json", "\"hidden_act\": \"gelu\"", "\"hidden_act\": \"swish\"");
    expect_load_error(d, EMBER_ERR_UNSUPPORTED, "hidden_act 'swish'", NULL);
    remove_dir(d);
}

Test(loader, relative_position_embeddings) {
    char *d = copy_dir(TINY_DIR);
    edit_file(d, "config.json", "\"model_type\": \"bert\"",
              "\"model_type\": \"bert\", \"position_embedding_type\": \"relative_key\"");
    expect_load_error(d, EMBER_ERR_UNSUPPORTED, "relative_key", NULL);
    remove_dir(d);
}

Test(loader, missing_config_field) {
    char *d = copy_dir(TINY_DIR);
    edit_file(d, "config.json", "\"num_attention_heads\"", "\"num_attention_headz\"");
    expect_load_error(d, EMBER_ERR_FORMAT, "'num_attention_heads' is missing", NULL);
    remove_dir(d);
}

Test(loader, heads_do_not_divide_hidden) {
    char *d = copy_dir(TINY_DIR);
    edit_file(d, "config.json", "\"num_attention_heads\": 2", "\"num_attention_heads\": 3");
    expect_load_error(d, EMBER_ERR_FORMAT, "not a multiple of num_attention_heads", NULL);
    remove_dir(d);
}

Test(loader, config_shape_mismatch_names_the_tensor) {
    char *d = copy_dir(TINY_DIR);
    edit_file(d, "config.json", "\"intermediate_size\": 128", "\"intermediate_size\": 256");
    expect_load_error(d, EMBER_ERR_FORMAT, "tensor 'bert.encoder.layer.0.intermediate.dense.weight' has wrong shape",
                      "got [128, 64], expected [256, 64]");
    remove_dir(d);
}

Test(loader, more_layers_in_file_than_config) {
    char *d = copy_dir(TINY_DIR);
    edit_file(d, "config.json", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1");
    expect_load_error(d, EMBER_ERR_FORMAT, "more than the 1 layers", NULL);
    remove_dir(d);
}

Test(loader, fewer_layers_in_file_than_config) {
    char *d = copy_dir(TINY_DIR);
    edit_file(d, "config.json", "\"num_hidden_layers\": 2", "\"num_hidden_layers\": 3");
    expect_load_error(d, EMBER_ERR_FORMAT, "tensor 'bert.encoder.layer.2.attention.self.query.weight' is missing",
                      NULL);
    remove_dir(d);
}

Test(loader, no_safetensors) {
    char *d = copy_dir(TINY_DIR);
    char *p = path_in(d, "model.safetensors"), *bin = path_in(d, "pytorch_model.bin");
    cr_assert_eq(rename(p, bin), 0);
    expect_load_error(d, EMBER_ERR_IO, "no model.safetensors", "pytorch_model.bin is not read");
    free(p);
    free(bin);
    remove_dir(d);
}

/* Write dir/model.safetensors as the first `keep` bytes of the real one,
 * then `tail` (may be NULL). */
static void rewrite_safetensors(const char *dir, size_t keep, const char *tail, size_t tail_len) {
    char src[512];
    snprintf(src, sizeof src, "%s/model.safetensors", TINY_DIR);
    size_t n;
    char *data = read_file(src, &n);
    if (keep > n) keep = n;
    char *p = path_in(dir, "model.safetensors");
    FILE *f = fopen(p, "wb");
    cr_assert(f);
    fwrite(data, 1, keep, f);
    if (tail) fwrite(tail, 1, tail_len, f);
    fclose(f);
    free(p);
    free(data);
}

Test(loader, truncated_safetensors) {
    char *d = copy_dir(TINY_DIR);
    rewrite_safetensors(d, 100000, NULL, 0); /* the download stopped part way */
    expect_load_error(d, EMBER_ERR_FORMAT, "model.safetensors", "outside the");
    remove_dir(d);
}

Test(loader, safetensors_shorter_than_its_header) {
    char *d = copy_dir(TINY_DIR);
    rewrite_safetensors(d, 200, NULL, 0);
    expect_load_error(d, EMBER_ERR_FORMAT, "corrupt safetensors header", NULL);
    remove_dir(d);
}

Test(loader, safetensors_few_bytes) {
    char *d = copy_dir(TINY_DIR);
    rewrite_safetensors(d, 5, NULL, 0);
    expect_load_error(d, EMBER_ERR_FORMAT, "truncated safetensors file", NULL);
    remove_dir(d);
}

Test(loader, safetensors_empty_file) {
    char *d = copy_dir(TINY_DIR);
    rewrite_safetensors(d, 0, NULL, 0);
    expect_load_error(d, EMBER_ERR_FORMAT, "empty", NULL);
    remove_dir(d);
}

Test(loader, safetensors_header_not_json) {
    char *d = copy_dir(TINY_DIR);
    char bad[64] = {16, 0, 0, 0, 0, 0, 0, 0};
    memcpy(bad + 8, "this is not json", 16);
    char *p = path_in(d, "model.safetensors");
    FILE *f = fopen(p, "wb");
    fwrite(bad, 1, 24, f);
    fclose(f);
    expect_load_error(d, EMBER_ERR_FORMAT, "corrupt safetensors header", NULL);
    free(p);
    remove_dir(d);
}

static void write_st(const char *dir, const char *header, size_t data_bytes) {
    char *p = path_in(dir, "model.safetensors");
    FILE *f = fopen(p, "wb");
    uint64_t n = strlen(header);
    uint8_t len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (uint8_t)(n >> (8 * i));
    fwrite(len8, 1, 8, f);
    fwrite(header, 1, n, f);
    for (size_t i = 0; i < data_bytes; i++) fputc(0, f);
    fclose(f);
    free(p);
}

Test(loader, safetensors_size_does_not_match_shape) {
    char *d = copy_dir(TINY_DIR);
    write_st(d, "{\"embeddings.word_embeddings.weight\":{\"dtype\":\"F32\",\"shape\":[600,64],\"data_offsets\":[0,100]}}",
             100);
    expect_load_error(d, EMBER_ERR_FORMAT, "holds 100 bytes but its shape and dtype need 153600", NULL);
    remove_dir(d);
}

Test(loader, safetensors_required_tensor_missing) {
    char *d = copy_dir(TINY_DIR);
    write_st(d, "{\"embeddings.word_embeddings.weight\":{\"dtype\":\"F32\",\"shape\":[600,64],\"data_offsets\":[0,153600]}}",
             153600);
    expect_load_error(d, EMBER_ERR_FORMAT, "tensor 'embeddings.position_embeddings.weight' is missing", NULL);
    remove_dir(d);
}

Test(loader, safetensors_unknown_dtype) {
    char *d = copy_dir(TINY_DIR);
    write_st(d, "{\"x\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[0,4]}}", 4);
    expect_load_error(d, EMBER_ERR_UNSUPPORTED, "tensor 'x' has unsupported dtype F8_E4M3", NULL);
    remove_dir(d);
}

Test(loader, safetensors_integer_weights) {
    char *d = copy_dir(TINY_DIR);
    write_st(d, "{\"embeddings.word_embeddings.weight\":{\"dtype\":\"I32\",\"shape\":[600,64],\"data_offsets\":[0,153600]}}",
             153600);
    expect_load_error(d, EMBER_ERR_UNSUPPORTED, "has dtype I32", NULL);
    remove_dir(d);
}

Test(loader, tokenizer_vocab_larger_than_model) {
    char *d = copy_dir(TINY_DIR);
    char *p = path_in(d, "vocab.txt");
    FILE *f = fopen(p, "a");
    for (int i = 0; i < 10; i++) fprintf(f, "extra%d\n", i);
    fclose(f);
    expect_load_error(d, EMBER_ERR_FORMAT, "the tokenizer has 610 ids but the model's vocab_size is 600", NULL);
    free(p);
    remove_dir(d);
}

Test(loader, no_tokenizer) {
    char *d = copy_dir(TINY_DIR);
    char *p = path_in(d, "vocab.txt");
    unlink(p);
    expect_load_error(d, EMBER_ERR_IO, "no tokenizer.json or vocab.txt", NULL);
    free(p);
    remove_dir(d);
}

Test(loader, unsupported_tokenizer_json) {
    char *d = copy_dir(TINY_DIR);
    char *p = path_in(d, "tokenizer.json");
    write_file(p, "{\"normalizer\": {\"type\": \"NFKC\"}, \"pre_tokenizer\": {\"type\": \"Metaspace\"},"
                  " \"model\": {\"type\": \"Unigram\"}}");
    expect_load_error(d, EMBER_ERR_UNSUPPORTED, "normalizer 'NFKC' is not supported", NULL);
    free(p);
    remove_dir(d);
}

/* ---- sentence-transformers modules ------------------------------------------------ */

static char *st_dir(const char *modules, const char *pooling) {
    char *d = copy_dir(TINY_DIR);
    char *p = path_in(d, "modules.json");
    write_file(p, modules);
    free(p);
    p = path_in(d, "1_Pooling");
    mkdir(p, 0755);
    free(p);
    p = path_in(d, "1_Pooling/config.json");
    write_file(p, pooling);
    free(p);
    return d;
}

#define MODULES_OK                                                                                                   \
    "[{\"idx\":0,\"name\":\"0\",\"path\":\"\",\"type\":\"sentence_transformers.models.Transformer\"},"               \
    "{\"idx\":1,\"name\":\"1\",\"path\":\"1_Pooling\",\"type\":\"sentence_transformers.models.Pooling\"},"           \
    "{\"idx\":2,\"name\":\"2\",\"path\":\"2_Normalize\",\"type\":\"sentence_transformers.models.Normalize\"}]"

Test(modules, sentence_transformers_pooling_and_normalize) {
    char *d = st_dir(MODULES_OK, "{\"word_embedding_dimension\": 64, \"pooling_mode_max_tokens\": true}");
    char *p = path_in(d, "sentence_bert_config.json");
    write_file(p, "{\"max_seq_length\": 32, \"do_lower_case\": false}");
    free(p);
    ember_model *m = load_model(d);
    ember_model_info i;
    ember_model_get_info(m, &i);
    cr_assert_eq(i.pooling, EMBER_POOLING_MAX);
    cr_assert_eq(i.normalize, 1);
    cr_assert_eq(i.max_length, 32);
    float v[64];
    const char *t = "hello world";
    cr_assert_eq(ember_encode(m, &t, NULL, 1, NULL, v, NULL), EMBER_OK);
    double n2 = 0;
    for (int k = 0; k < 64; k++) n2 += (double)v[k] * v[k];
    cr_assert_float_eq(n2, 1.0, 1e-5, "normalised: |v|^2 = %f", n2);
    ember_model_free(m);
    remove_dir(d);
}

Test(modules, unsupported_module) {
    char *d = st_dir("[{\"idx\":0,\"path\":\"\",\"type\":\"sentence_transformers.models.Transformer\"},"
                     "{\"idx\":1,\"path\":\"1_LSTM\",\"type\":\"sentence_transformers.models.LSTM\"}]",
                     "{}");
    expect_load_error(d, EMBER_ERR_UNSUPPORTED, "module 'sentence_transformers.models.LSTM' is not supported", NULL);
    remove_dir(d);
}

/* Dense runs (tests/test_st_modules.c), but only on a pooled vector */
Test(modules, dense_before_pooling) {
    char *d = st_dir("[{\"idx\":0,\"path\":\"\",\"type\":\"sentence_transformers.models.Transformer\"},"
                     "{\"idx\":1,\"path\":\"2_Dense\",\"type\":\"sentence_transformers.models.Dense\"}]",
                     "{}");
    expect_load_error(d, EMBER_ERR_UNSUPPORTED, "module 1 'sentence_transformers.models.Dense' cannot run where it is",
                      "it must come after Pooling");
    remove_dir(d);
}

Test(modules, two_pooling_modes) {
    char *d = st_dir(MODULES_OK, "{\"pooling_mode_cls_token\": true, \"pooling_mode_mean_tokens\": true}");
    expect_load_error(d, EMBER_ERR_UNSUPPORTED, "several pooling modes", NULL);
    remove_dir(d);
}

Test(modules, weighted_mean_pooling) {
    char *d = st_dir(MODULES_OK, "{\"pooling_mode_weightedmean_tokens\": true}");
    expect_load_error(d, EMBER_ERR_UNSUPPORTED, "pooling_mode_weightedmean_tokens", NULL);
    remove_dir(d);
}

Test(modules, no_pooling_mode) {
    char *d = st_dir(MODULES_OK, "{\"word_embedding_dimension\": 64}");
    expect_load_error(d, EMBER_ERR_FORMAT, "no pooling mode is enabled", NULL);
    remove_dir(d);
}

Test(modules, pooling_dimension_mismatch) {
    char *d = st_dir(MODULES_OK, "{\"word_embedding_dimension\": 384, \"pooling_mode_mean_tokens\": true}");
    expect_load_error(d, EMBER_ERR_FORMAT, "word_embedding_dimension 384 does not match hidden_size 64", NULL);
    remove_dir(d);
}

Test(modules, malformed_modules_json) {
    char *d = st_dir("[{\"type\": ", "{}");
    expect_load_error(d, EMBER_ERR_FORMAT, "modules.json", "malformed JSON");
    remove_dir(d);
}

/* ---- the API refuses bad arguments without crashing ---------------------------------- */

Test(api, bad_arguments) {
    ember_model *m = load_model(TINY_DIR);
    float v[64];
    cr_assert_eq(ember_encode(m, NULL, NULL, 1, NULL, v, NULL), EMBER_ERR_INVALID_ARGUMENT);
    const char *nul[1] = {NULL};
    cr_assert_eq(ember_encode(m, nul, NULL, 1, NULL, v, NULL), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert_eq(ember_encode(NULL, nul, NULL, 1, NULL, v, NULL), EMBER_ERR_INVALID_ARGUMENT);
    ember_encode_params p = ember_encode_default_params();
    p.pooling = (ember_pooling)42;
    const char *t = "x";
    cr_assert_eq(ember_encode(m, &t, NULL, 1, &p, v, NULL), EMBER_ERR_INVALID_ARGUMENT);
    int32_t bad_ids[] = {2, 9999, 3};
    ember_sequence s = {bad_ids, NULL, 3, 0};
    cr_assert_eq(ember_encode_sequences(m, &s, 1, NULL, v, NULL), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(ember_last_error(), "token id 9999 is outside the vocabulary"), "%s", ember_last_error());
    /* an over-long text with truncation off is an error naming the text */
    char long_text[2000];
    memset(long_text, 0, sizeof long_text);
    for (int i = 0; i < 300; i++) strcat(long_text, "a b ");
    const char *two[2] = {"short", long_text};
    float v2[128];
    p = ember_encode_default_params();
    p.truncate = 0;
    cr_assert_eq(ember_encode(m, two, NULL, 2, &p, v2, NULL), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(ember_last_error(), "text 1 is"), "%s", ember_last_error());
    /* the CPU backend computes in fp32 only; CUDA without a device is an error */
    ember_model_params mp = ember_model_default_params();
    mp.dtype = EMBER_DTYPE_FP16;
    ember_model *x = NULL;
    cr_assert_eq(ember_model_load(TINY_DIR, &mp, &x), EMBER_ERR_UNSUPPORTED);
    if (ember_cuda_device_count() <= 0) {
        mp = ember_model_default_params();
        mp.device = EMBER_DEVICE_CUDA;
        cr_assert_eq(ember_model_load(TINY_DIR, &mp, &x), EMBER_ERR_NO_DEVICE);
        cr_assert_null(x);
        mp.device = EMBER_DEVICE_AUTO;
        cr_assert_eq(ember_model_load(TINY_DIR, &mp, &x), EMBER_OK, "auto falls back to the CPU");
        ember_model_info i;
        ember_model_get_info(x, &i);
        cr_assert_eq(i.device, EMBER_DEVICE_CPU);
        ember_model_free(x);
    }
    ember_model_free(m);
}

Test(api, tokenize_buffer_and_padding) {
    ember_model *m = load_model(TINY_DIR);
    ember_token toks[4];
    int32_t n = 0;
    ember_status st = ember_tokenize(m, "the quick brown fox", -1, NULL, 0, NULL, toks, 4, &n, NULL);
    cr_assert_eq(st, EMBER_ERR_BUFFER_TOO_SMALL);
    cr_assert_eq(n, 6, "the needed size is returned");
    ember_token big[16];
    ember_tokenize_params tp = ember_tokenize_default_params();
    tp.pad_to = 10;
    cr_assert_eq(ember_tokenize(m, "the quick brown fox", -1, NULL, 0, &tp, big, 16, &n, NULL), EMBER_OK);
    cr_assert_eq(n, 10);
    cr_assert_eq(big[5].mask, 1);
    cr_assert_eq(big[6].mask, 0);
    cr_assert_eq(big[6].id, 0, "[PAD]");
    /* invalid UTF-8 is replaced and counted */
    ember_text_stats stats;
    cr_assert_eq(ember_tokenize(m, "the \xff\xfe fox", -1, NULL, 0, NULL, big, 16, &n, &stats), EMBER_OK);
    cr_assert_eq(stats.invalid_utf8, 2);
    cr_assert_eq(n, 4);
    /* text with a NUL byte inside, given by length */
    cr_assert_eq(ember_tokenize(m, "the\0fox", 7, NULL, 0, NULL, big, 16, &n, NULL), EMBER_OK);
    ember_token joined[16];
    int32_t nj;
    cr_assert_eq(ember_tokenize(m, "thefox", -1, NULL, 0, NULL, joined, 16, &nj, NULL), EMBER_OK);
    cr_assert_eq(n, nj, "NUL is dropped by clean_text: 'thefox' is one word");
    for (int32_t i = 0; i < n; i++) cr_assert_eq(big[i].id, joined[i].id);
    ember_model_free(m);
}

/* ---- issue 13, item 4: a matrix of broken model files ----------------------------------- */

#include "model/safetensors.h"

/* The library's warnings, collected (ember_log_set is global: Criterion runs
 * each test in its own process). */
static char warnings[8192];
static int n_warnings;
static void collect_warning(ember_log_level level, const char *msg, void *user) {
    (void)user;
    if (level != EMBER_LOG_WARN) return;
    n_warnings++;
    size_t n = strlen(warnings);
    snprintf(warnings + n, sizeof warnings - n, "%s\n", msg);
}

/* Write `bits` (esize little-endian bytes) as element `index` of `tensor`
 * in dir/model.safetensors. */
static void poke_element(const char *dir, const char *tensor, int64_t index, uint32_t bits) {
    char *p = path_in(dir, "model.safetensors");
    safetensors_file f;
    cr_assert_eq(safetensors_open(&f, p), EMBER_OK, "%s", ember_last_error());
    const st_tensor *t = safetensors_find(&f, tensor);
    cr_assert(t, "no tensor %s", tensor);
    cr_assert(index < t->numel);
    const int esize = t->dtype == ST_F32 ? 4 : 2;
    const long off = (long)(t->data - (const uint8_t *)f.map.data) + (long)index * esize;
    safetensors_close(&f);
    FILE *o = fopen(p, "r+b");
    cr_assert(o);
    uint8_t le[4] = {(uint8_t)bits, (uint8_t)(bits >> 8), (uint8_t)(bits >> 16), (uint8_t)(bits >> 24)};
    cr_assert_eq(fseek(o, off, SEEK_SET), 0);
    cr_assert_eq(fwrite(le, 1, (size_t)esize, o), (size_t)esize);
    cr_assert_eq(fclose(o), 0);
    free(p);
}

/* Replace `from` by `to`, of the same length, inside dir/model.safetensors
 * (a binary file: its length prefix holds NUL bytes). */
static void edit_header(const char *dir, const char *from, const char *to) {
    cr_assert_eq(strlen(from), strlen(to));
    char *p = path_in(dir, "model.safetensors");
    size_t n;
    char *s = read_file(p, &n);
    char *at = memmem(s, n, from, strlen(from));
    cr_assert(at, "%s has no '%s'", p, from);
    memcpy(at, to, strlen(to));
    FILE *o = fopen(p, "wb");
    cr_assert(o);
    cr_assert_eq(fwrite(s, 1, n, o), n);
    cr_assert_eq(fclose(o), 0);
    free(s);
    free(p);
}

/* The tiny model with its weights in `dtype` (ST_F32, ST_F16, ST_BF16). */
static char *tiny_in_dtype(int dtype) {
    char *d = copy_dir(TINY_DIR);
    char src[512], *dst = path_in(d, "model.safetensors");
    snprintf(src, sizeof src, "%s/model.safetensors", TINY_DIR);
    safetensors_convert(src, dst, dtype);
    free(dst);
    return d;
}

static void expect_non_finite_warning(int dtype, uint32_t nan_bits, uint32_t inf_bits) {
    char *d = tiny_in_dtype(dtype);
    ember_log_set(collect_warning, NULL);
    /* the clean model: no warning (a scan that cries wolf would fail here) */
    ember_model *m = load_model(d);
    ember_model_free(m);
    cr_assert_eq(n_warnings, 0, "warnings for clean weights: %s", warnings);
    const char *w2 = "bert.encoder.layer.1.output.dense.weight", *ln = "bert.embeddings.LayerNorm.bias";
    poke_element(d, w2, 5, nan_bits);
    poke_element(d, w2, 17, inf_bits);
    poke_element(d, ln, 63, inf_bits | (dtype == ST_F32 ? 0x80000000u : 0x8000u)); /* -Inf */
    m = NULL;
    cr_assert_eq(ember_model_load(d, NULL, &m), EMBER_OK, "non-finite weights warn, they do not refuse: %s",
                 ember_last_error());
    ember_model_free(m);
    ember_log_set(NULL, NULL);
    cr_log_info("%s", warnings);
    cr_assert_eq(n_warnings, 2, "one warning per tensor: %s", warnings);
    cr_assert(strstr(warnings, "model.safetensors: tensor 'bert.encoder.layer.1.output.dense.weight' holds 2 NaN/Inf "
                               "values (the first at element 5)"),
              "%s", warnings);
    cr_assert(strstr(warnings, "tensor 'bert.embeddings.LayerNorm.bias' holds 1 NaN/Inf value (the first at element 63)"),
              "%s", warnings);
    remove_dir(d);
}

Test(weights, nan_inf_f32_warns_naming_the_tensor) { expect_non_finite_warning(ST_F32, 0x7fc00000u, 0x7f800000u); }
Test(weights, nan_inf_f16_warns_naming_the_tensor) { expect_non_finite_warning(ST_F16, 0x7e00u, 0x7c00u); }
Test(weights, nan_inf_bf16_warns_naming_the_tensor) { expect_non_finite_warning(ST_BF16, 0x7fc0u, 0x7f80u); }

/* The largest finite values and subnormals are not NaN/Inf. */
Test(weights, extreme_finite_values_do_not_warn) {
    char *d = tiny_in_dtype(ST_F32);
    poke_element(d, "bert.encoder.layer.0.attention.self.query.weight", 0, 0x7f7fffffu); /* FLT_MAX */
    poke_element(d, "bert.encoder.layer.0.attention.self.query.weight", 1, 0xff7fffffu); /* -FLT_MAX */
    poke_element(d, "bert.encoder.layer.0.attention.self.query.weight", 2, 0x00000001u); /* subnormal */
    ember_log_set(collect_warning, NULL);
    ember_model *m = load_model(d);
    ember_model_free(m);
    ember_log_set(NULL, NULL);
    cr_assert_eq(n_warnings, 0, "%s", warnings);
    remove_dir(d);
}

/* Cut model.safetensors at several points: each a format error naming it. */
Test(weights, truncated_safetensors_at_every_part) {
    char src[512];
    snprintf(src, sizeof src, "%s/model.safetensors", TINY_DIR);
    size_t n;
    char *data = read_file(src, &n);
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = (hlen << 8) | (uint8_t)data[i];
    free(data);
    const size_t cuts[] = {1, 7, 8, 9, 8 + (size_t)hlen / 2, 8 + (size_t)hlen, 8 + (size_t)hlen + 1, n / 2, n - 1};
    const char *why[] = {"truncated safetensors file", "truncated safetensors file", "corrupt safetensors header",
                         "corrupt safetensors header", "corrupt safetensors header", "outside the",
                         "outside the", "outside the", "outside the"};
    for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
        char *d = copy_dir(TINY_DIR);
        rewrite_safetensors(d, cuts[k], NULL, 0);
        cr_log_info("cut at %zu of %zu bytes", cuts[k], n);
        expect_load_error(d, EMBER_ERR_FORMAT, "model.safetensors", why[k]);
        remove_dir(d);
    }
}

/* A header edited in place (same length, so the data still lines up). */
Test(weights, tensor_of_the_wrong_dtype_is_named) {
    char *d = tiny_in_dtype(ST_F32);
    edit_header(d, "\"bert.encoder.layer.1.output.LayerNorm.weight\":{\"dtype\":\"F32\"",
              "\"bert.encoder.layer.1.output.LayerNorm.weight\":{\"dtype\":\"I32\"");
    expect_load_error(d, EMBER_ERR_UNSUPPORTED, "model.safetensors: tensor 'bert.encoder.layer.1.output.LayerNorm.weight'",
                      "has dtype I32");
    remove_dir(d);
}

Test(weights, tensor_of_the_wrong_shape_is_named) {
    char *d = tiny_in_dtype(ST_F32);
    /* (128, 64) stored as (64, 128): the same bytes, transposed shape */
    edit_header(d, "\"bert.encoder.layer.0.intermediate.dense.weight\":{\"dtype\":\"F32\",\"shape\":[128,64]",
              "\"bert.encoder.layer.0.intermediate.dense.weight\":{\"dtype\":\"F32\",\"shape\":[64,128]");
    expect_load_error(d, EMBER_ERR_FORMAT, "tensor 'bert.encoder.layer.0.intermediate.dense.weight' has wrong shape",
                      "got [64, 128], expected [128, 64]");
    remove_dir(d);
}

Test(weights, flattened_tensor_is_named) {
    char *d = tiny_in_dtype(ST_F32);
    /* (128, 64) stored flat: the same bytes and length ("[ 8192 ]" is JSON) */
    edit_header(d, "\"bert.encoder.layer.1.intermediate.dense.weight\":{\"dtype\":\"F32\",\"shape\":[128,64]",
                "\"bert.encoder.layer.1.intermediate.dense.weight\":{\"dtype\":\"F32\",\"shape\":[ 8192 ]");
    expect_load_error(d, EMBER_ERR_FORMAT, "tensor 'bert.encoder.layer.1.intermediate.dense.weight' has wrong shape",
                      "got [8192], expected [128, 64]");
    remove_dir(d);
}

/* config.json with sizes no model has: refused by name, before anything is
 * allocated from them (the test would run out of memory otherwise). */
Test(config, absurd_sizes) {
    static const struct {
        const char *from, *to, *frag;
    } cases[] = {
        {"\"hidden_size\": 64", "\"hidden_size\": 1000000000", "'hidden_size' is 1000000000, outside"},
        {"\"hidden_size\": 64", "\"hidden_size\": 0", "'hidden_size' is 0, outside"},
        {"\"hidden_size\": 64", "\"hidden_size\": -64", "'hidden_size' is -64, outside"},
        {"\"hidden_size\": 64", "\"hidden_size\": 64.5", "'hidden_size' must be an integer"},
        {"\"hidden_size\": 64", "\"hidden_size\": \"64\"", "'hidden_size' must be an integer"},
        {"\"hidden_size\": 64", "\"hidden_size\": 1e300", "'hidden_size' must be an integer"},
        {"\"vocab_size\": 600", "\"vocab_size\": 99999999999999", "'vocab_size' is 99999999999999, outside"},
        {"\"num_hidden_layers\": 2", "\"num_hidden_layers\": 0", "'num_hidden_layers' is 0, outside"},
        {"\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1000000", "'num_hidden_layers' is 1000000, outside"},
        {"\"num_attention_heads\": 2", "\"num_attention_heads\": 4096", "'num_attention_heads' is 4096, outside"},
        {"\"intermediate_size\": 128", "\"intermediate_size\": 4294967296", "'intermediate_size' is 4294967296, outside"},
        {"\"max_position_embeddings\": 64", "\"max_position_embeddings\": -1", "'max_position_embeddings' is -1"},
        {"\"type_vocab_size\": 2", "\"type_vocab_size\": 0", "'type_vocab_size' is 0, outside"},
        {"\"layer_norm_eps\": 1e-12", "\"layer_norm_eps\": -1", "'layer_norm_eps' must be a positive number"},
        /* within the limits, but not this file's: the first tensor that disagrees is named */
        {"\"vocab_size\": 600", "\"vocab_size\": 10000000",
         "tensor 'bert.embeddings.word_embeddings.weight' has wrong shape: got [600, 64], expected [10000000, 64]"},
        {"\"max_position_embeddings\": 64", "\"max_position_embeddings\": 1048576",
         "tensor 'bert.embeddings.position_embeddings.weight' has wrong shape"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char *d = copy_dir(TINY_DIR);
        edit_file(d, "config.json", cases[k].from, cases[k].to);
        cr_log_info("%s", cases[k].to);
        expect_load_error(d, EMBER_ERR_FORMAT, strstr(cases[k].frag, "tensor '") ? "model.safetensors" : "config.json",
                          cases[k].frag);
        remove_dir(d);
    }
}

/* Files that cannot be read as files. Root reads anything, so it is a
 * directory, a FIFO or a dangling link in place of the file (a FIFO would
 * block a plain open forever). */
static void replace_with(const char *dir, const char *file, const char *kind) {
    char *p = path_in(dir, file);
    unlink(p);
    if (strcmp(kind, "dir") == 0) cr_assert_eq(mkdir(p, 0755), 0);
    else if (strcmp(kind, "fifo") == 0) cr_assert_eq(mkfifo(p, 0644), 0);
    else cr_assert_eq(symlink("/nonexistent/blob", p), 0);
    free(p);
}

Test(files, unreadable_model_files_are_named) {
    static const struct {
        const char *file, *kind, *frag;
    } cases[] = {
        {"config.json", "dir", "config.json: is a directory, not a file"},
        {"config.json", "fifo", "config.json: not a regular file"},
        {"config.json", "link", "config.json: no such file (a link to a file that does not exist)"},
        {"model.safetensors", "dir", "model.safetensors: is a directory, not a file"},
        {"model.safetensors", "fifo", "model.safetensors: not a regular file"},
        {"model.safetensors", "link", "no model.safetensors"},
        {"vocab.txt", "dir", "vocab.txt: is a directory, not a file"},
        {"vocab.txt", "fifo", "vocab.txt: not a regular file"},
        {"tokenizer_config.json", "dir", "tokenizer_config.json: is a directory, not a file"},
        {"tokenizer_config.json", "fifo", "tokenizer_config.json: not a regular file"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char *d = copy_dir(TINY_DIR);
        replace_with(d, cases[k].file, cases[k].kind);
        cr_log_info("%s as a %s", cases[k].file, cases[k].kind);
        expect_load_error(d, EMBER_ERR_IO, cases[k].frag, NULL);
        remove_dir(d);
    }
}

Test(files, unreadable_modules_files_are_named) {
    char *d = st_dir(MODULES_OK, "{\"pooling_mode_mean_tokens\": true}");
    replace_with(d, "1_Pooling/config.json", "dir");
    expect_load_error(d, EMBER_ERR_IO, "1_Pooling/config.json: is a directory, not a file", NULL);
    remove_dir(d);
    d = st_dir(MODULES_OK, "{\"pooling_mode_mean_tokens\": true}");
    replace_with(d, "modules.json", "dir");
    expect_load_error(d, EMBER_ERR_IO, "modules.json: is a directory, not a file", NULL);
    remove_dir(d);
}
