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
    ember_sequence s = {bad_ids, NULL, 3};
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
