/* ember embed --tokens end to end on the tiny model: the .npy holds what
 * ember_encode_tokens gives, the index's tokens and offsets are
 * ember_tokenize's, bad input is counted and reported as ember embed reports
 * it, and a failed run leaves no file behind. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_util.h"

#define EMBER_BIN EMBER_BINARY_DIR "/ember"

static char *dir;

static void setup(void) {
    char tmpl[] = "/tmp/ember-tokens-XXXXXX";
    cr_assert(mkdtemp(tmpl));
    dir = strdup(tmpl);
}

static void teardown(void) { remove_dir(dir); }

/* Run `ember embed --tokens ARGS` on input file in.txt in dir; its exit
 * status, stderr in dir/err.txt. */
static int run_tokens(const char *args) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' embed --tokens -m '%s' %s 2> err.txt", dir, EMBER_BIN, TINY_DIR, args);
    int st = system(cmd);
    cr_assert(WIFEXITED(st), "%s did not exit", cmd);
    return WEXITSTATUS(st);
}

static char *dir_file(const char *name) {
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

/* Lines of in.txt: plain, empty, invalid UTF-8, accents and punctuation. */
static const char *const lines[] = {"hello world", "", "the cat sat\xff on the mat", "Caf\xc3\xa9, na\xc3\xafve!",
                                    "a b c d e f g h i j k l m n o p"};
#define N_LINES 5

TestSuite(embed_tokens, .init = setup, .fini = teardown, .timeout = 300);

Test(embed_tokens, rows_match_the_api_and_offsets_match_the_tokenizer) {
    FILE *f = fopen(dir_file("in.txt"), "wb");
    cr_assert(f);
    for (int i = 0; i < N_LINES; i++) fprintf(f, "%s\n", lines[i]);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(run_tokens("in.txt -o t.npy"), 0, "%s", read_file(dir_file("err.txt"), NULL));

    ember_model *m = load_model(TINY_DIR);
    ember_text_stats stats[N_LINES];
    ember_token_embeddings *e;
    cr_assert_eq(ember_encode_tokens(m, lines, NULL, N_LINES, NULL, &e, stats), EMBER_OK, "%s", ember_last_error());

    int64_t rows, cols;
    float *got = npy_read(dir_file("t.npy"), &rows, &cols);
    cr_assert_eq(rows, e->n_tokens);
    cr_assert_eq(cols, e->dim);
    float d = max_abs_diff(got, e->data, (size_t)rows * (size_t)cols);
    printf("embed --tokens: %lld rows x %lld, max |cli - api| = %g\n", (long long)rows, (long long)cols, d);
    cr_assert(d <= 1e-5f, "the .npy differs from ember_encode_tokens by %g", d);

    FILE *ix = fopen(dir_file("t.jsonl"), "r");
    cr_assert(ix, "no index t.jsonl");
    char buf[1 << 16];
    ember_token toks[256];
    for (int i = 0; i < N_LINES; i++) {
        cr_assert(fgets(buf, sizeof buf, ix), "index line %d is missing", i + 1);
        json_error_t err;
        json_t *o = json_loads(buf, 0, &err);
        cr_assert(o, "index line %d: %s", i + 1, err.text);
        cr_assert_eq(json_integer_value(json_object_get(o, "line")), i + 1);
        json_t *r = json_object_get(o, "rows");
        cr_assert_eq(json_integer_value(json_array_get(r, 0)), e->offsets[i]);
        cr_assert_eq(json_integer_value(json_array_get(r, 1)), e->offsets[i + 1]);
        int32_t n;
        cr_assert_eq(ember_tokenize(m, lines[i], -1, NULL, 0, NULL, toks, 256, &n, NULL), EMBER_OK);
        json_t *ids = json_object_get(o, "ids"), *tk = json_object_get(o, "tokens"),
               *off = json_object_get(o, "offsets");
        cr_assert_eq((int32_t)json_array_size(tk), n, "line %d: %zu tokens, the tokenizer gives %d", i + 1,
                     json_array_size(tk), n);
        cr_assert_eq(n, e->offsets[i + 1] - e->offsets[i]);
        for (int32_t k = 0; k < n; k++) {
            cr_assert_eq(json_integer_value(json_array_get(ids, (size_t)k)), toks[k].id);
            cr_assert_str_eq(json_string_value(json_array_get(tk, (size_t)k)), ember_token_text(m, toks[k].id));
            json_t *se = json_array_get(off, (size_t)k);
            cr_assert_eq(json_integer_value(json_array_get(se, 0)), toks[k].start, "line %d token %d", i + 1, k);
            cr_assert_eq(json_integer_value(json_array_get(se, 1)), toks[k].end, "line %d token %d", i + 1, k);
        }
        cr_assert_eq(json_integer_value(json_object_get(o, "invalid_utf8")), stats[i].invalid_utf8);
        json_decref(o);
    }
    cr_assert_null(fgets(buf, sizeof buf, ix), "the index has more lines than the input");
    fclose(ix);

    char *err = read_file(dir_file("err.txt"), NULL);
    cr_assert(strstr(err, "1 empty lines embedded as empty texts"), "%s", err);
    cr_assert(strstr(err, "1 texts had invalid UTF-8, replaced by U+FFFD (first: row 3)"), "%s", err);
    free(err);
    free(got);
    ember_token_embeddings_free(e);
    ember_model_free(m);
}

Test(embed_tokens, truncation_is_counted_or_an_error_naming_the_line) {
    FILE *f = fopen(dir_file("in.txt"), "wb");
    cr_assert(f);
    fputs("short\n", f);
    for (int i = 0; i < 40; i++) fputs("word ", f);
    fputs("\n", f);
    cr_assert_eq(fclose(f), 0);
    cr_assert_eq(run_tokens("--max-length 16 in.txt -o t.npy"), 0);
    char *err = read_file(dir_file("err.txt"), NULL);
    cr_assert(strstr(err, "1 texts truncated to 16 tokens (first: row 2)"), "%s", err);
    free(err);
    int64_t rows, cols;
    free(npy_read(dir_file("t.npy"), &rows, &cols));
    cr_assert_eq(rows, 3 + 16);

    unlink(dir_file("t.npy"));
    unlink(dir_file("t.jsonl"));
    cr_assert_eq(run_tokens("--max-length 16 --no-truncate in.txt -o t.npy"), 1);
    err = read_file(dir_file("err.txt"), NULL);
    cr_assert(strstr(err, "in.txt:2: the text is ") && strstr(err, "tokens long, over the model's maximum of 16"), "%s",
              err);
    free(err);
    cr_assert(access(dir_file("t.npy"), F_OK) != 0, "a failed run left t.npy");
    cr_assert(access(dir_file("t.jsonl"), F_OK) != 0, "a failed run left t.jsonl");
}

Test(embed_tokens, jsonl_input_and_its_errors) {
    write_file(dir_file("in.jsonl"), "{\"body\": \"hello world\"}\n{\"body\": 3}\n");
    cr_assert_eq(run_tokens("--field body in.jsonl -o t.npy --index idx.jsonl"), 1);
    char *err = read_file(dir_file("err.txt"), NULL);
    cr_assert(strstr(err, "in.jsonl:2:"), "%s", err);
    free(err);
    cr_assert(access(dir_file("idx.jsonl"), F_OK) != 0);

    write_file(dir_file("in.jsonl"), "{\"body\": \"hello world\"}\n");
    cr_assert_eq(run_tokens("--field body in.jsonl -o t.npy --index idx.jsonl"), 0);
    char *ix = read_file(dir_file("idx.jsonl"), NULL);
    cr_assert(strstr(ix, "\"tokens\": [\"[CLS]\", \"hello\", \"world\", \"[SEP]\"]"), "%s", ix);
    free(ix);
}

Test(embed_tokens, options_of_pooled_vectors_are_refused) {
    write_file(dir_file("in.txt"), "hello\n");
    cr_assert_eq(run_tokens("in.txt -o t.npy --pooling mean"), 2);
    char *err = read_file(dir_file("err.txt"), NULL);
    cr_assert(strstr(err, "--pooling does not go with --tokens"), "%s", err);
    free(err);
    cr_assert_eq(run_tokens("in.txt"), 2);
    err = read_file(dir_file("err.txt"), NULL);
    cr_assert(strstr(err, "-o FILE.npy"), "%s", err);
    free(err);
}
