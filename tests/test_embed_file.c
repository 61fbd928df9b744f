/* ember_embed_file as a library call (no program around it): rows in input
 * order equal to ember_encode's, the totals, progress and log callbacks, a
 * cancel that leaves resumable shards, a resume that ends as an
 * uninterrupted run, and errors that name the file and line. The ember
 * program's own behaviour is tested by script_embed_stream.sh and
 * test_pipeline.c. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "test_util.h"

#define N_LINES 3000

static char *make_corpus(char *dir, char ***lines_out) {
    char *path = malloc(strlen(dir) + 32);
    sprintf(path, "%s/corpus.txt", dir);
    FILE *f = fopen(path, "w");
    cr_assert(f);
    char **lines = calloc(N_LINES, sizeof *lines);
    static const char *words[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "café", "日本語"};
    uint32_t r = 12345;
    for (int i = 0; i < N_LINES; i++) {
        char buf[512] = "";
        int n = i % 97 == 0 ? 0 : (int)((r = r * 1103515245u + 12345u) >> 16) % 40 + 1; /* some empty, some long */
        for (int k = 0; k < n; k++) {
            strcat(buf, k ? " " : "");
            strcat(buf, words[(r = r * 1103515245u + 12345u) >> 16 & 7 ? (r >> 20) % 10 : 0]);
        }
        lines[i] = strdup(buf);
        fprintf(f, "%s\n", buf);
    }
    fclose(f);
    *lines_out = lines;
    return path;
}

/* The vectors one ember_encode call gives the corpus. */
static float *reference(ember_model *m, char **lines, int32_t dim) {
    float *ref = malloc((size_t)N_LINES * dim * sizeof *ref);
    cr_assert_eq(ember_encode(m, (const char *const *)lines, NULL, N_LINES, NULL, ref, NULL), EMBER_OK);
    return ref;
}

static void expect_rows(const char *npy, const float *ref, int32_t dim, int exact) {
    int64_t rows, cols;
    float *got = npy_read(npy, &rows, &cols);
    cr_assert(rows == N_LINES && cols == dim, "%s: %lld x %lld", npy, (long long)rows, (long long)cols);
    float d = max_abs_diff(got, ref, (size_t)N_LINES * dim);
    if (exact) cr_assert(memcmp(got, ref, (size_t)N_LINES * dim * sizeof *got) == 0, "not the same bits (%g)", d);
    else cr_assert_leq(d, 1e-5f, "max |diff| %g", d);
    free(got);
}

typedef struct {
    int calls, done;
    int64_t last_rows;
} progress_seen;

static void on_progress(const ember_embed_progress *p, void *user) {
    progress_seen *s = user;
    s->calls++;
    cr_assert_geq(p->rows, s->last_rows, "progress went back");
    s->last_rows = p->rows;
    if (p->done) s->done++;
}

static char notes[4096];
static void on_log(ember_log_level level, const char *msg, void *user) {
    (void)level;
    (void)user;
    strncat(notes, msg, sizeof notes - strlen(notes) - 2);
    strcat(notes, "\n");
}

Test(embed_file, rows_in_order_with_totals_and_progress) {
    char *dir = copy_dir(SRC_PATH("tests/data/tiny-bert")), **lines;
    char *corpus = make_corpus(dir, &lines);
    ember_model *m = load_model(dir);
    ember_model_info info;
    ember_model_get_info(m, &info);
    float *ref = reference(m, lines, info.dim);
    char out[4200];
    snprintf(out, sizeof out, "%s/out.npy", dir);
    ember_embed_options o = ember_embed_default_options();
    o.input = corpus;
    o.output = out;
    o.format = EMBER_OUTPUT_NPY;
    o.window = 500; /* several windows */
    progress_seen ps = {0};
    o.progress = on_progress;
    o.progress_user = &ps;
    o.progress_interval = 0.001;
    ember_embed_result r;
    cr_assert_eq(ember_embed_file(&m, 1, &o, &r), EMBER_OK, "%s", ember_last_error());
    cr_assert_eq(r.rows, N_LINES);
    cr_assert_eq(r.totals.rows, N_LINES);
    cr_assert_eq(r.totals.empty, (N_LINES + 96) / 97, "empty lines counted: %lld", (long long)r.totals.empty);
    cr_assert_eq(r.n_models, 1);
    cr_assert(ps.done == 1 && ps.last_rows == N_LINES, "progress: %d calls, done %d, %lld rows", ps.calls, ps.done,
              (long long)ps.last_rows);
    expect_rows(out, ref, info.dim, info.batch_invariant);
    /* two models (replicas) and three tokenizer threads: the same rows */
    ember_model *m2 = load_model(dir);
    ember_model *both[2] = {m, m2};
    o.tokenizer_threads = 3;
    o.progress = NULL;
    cr_assert_eq(ember_embed_file(both, 2, &o, &r), EMBER_OK, "%s", ember_last_error());
    cr_assert_eq(r.n_models, 2);
    expect_rows(out, ref, info.dim, info.batch_invariant);
    ember_model_free(m2);
    ember_model_free(m);
    free(ref);
    free(corpus);
    free_lines(lines, N_LINES);
    remove_dir(dir);
}

static atomic_int rows_before_cancel;
static int cancel_after_a_while(void *user) {
    (void)user;
    /* polled per line and while waiting: stop once the run is under way */
    return atomic_fetch_add(&rows_before_cancel, 1) > 1500;
}

Test(embed_file, cancelled_then_resumed_to_the_same_output) {
    char *dir = copy_dir(SRC_PATH("tests/data/tiny-bert")), **lines;
    char *corpus = make_corpus(dir, &lines);
    ember_model *m = load_model(dir);
    ember_model_info info;
    ember_model_get_info(m, &info);
    float *ref = reference(m, lines, info.dim);
    char shards[4200], manifest[4300];
    snprintf(shards, sizeof shards, "%s/shards", dir);
    ember_embed_options o = ember_embed_default_options();
    o.input = corpus;
    o.output = shards;
    o.format = EMBER_OUTPUT_NPY;
    o.shard_rows = 400;
    o.window = 200;
    o.cancel = cancel_after_a_while;
    /* --resume with nothing to resume starts afresh, and says so in the log */
    o.resume = 1;
    o.log = on_log;
    ember_embed_result r;
    cr_assert_eq(ember_embed_file(&m, 1, &o, &r), EMBER_ERR_CANCELLED, "%s", ember_last_error());
    cr_assert(strstr(notes, "nothing to resume"), "notes: %s", notes);
    cr_assert(r.committed_shards > 0 && r.committed_rows == (int64_t)r.committed_shards * 400 &&
                  r.committed_rows < N_LINES,
              "cancelled with %lld rows in %d shards", (long long)r.committed_rows, r.committed_shards);
    snprintf(manifest, sizeof manifest, "%s/manifest.json", shards);
    char *mf = read_file(manifest, NULL);
    cr_assert(strstr(mf, "\"complete\": false"), "%s", mf);
    free(mf);
    /* resumed: the notes go to the options' log, the rest is the same as one run */
    o.cancel = NULL;
    cr_assert_eq(ember_embed_file(&m, 1, &o, &r), EMBER_OK, "%s", ember_last_error());
    cr_assert_eq(r.resumed_rows, (int64_t)r.resumed_shards * 400);
    cr_assert_gt(r.resumed_rows, 0);
    cr_assert_eq(r.totals.rows, N_LINES);
    cr_assert_eq(r.rows + r.resumed_rows, N_LINES);
    float *all = malloc((size_t)N_LINES * info.dim * sizeof *all);
    for (int s = 0; s * 400 < N_LINES; s++) {
        char p[4300];
        snprintf(p, sizeof p, "%s/shard-%05d.npy", shards, s);
        int64_t rows, cols;
        float *v = npy_read(p, &rows, &cols);
        cr_assert_eq(rows, s * 400 + 400 <= N_LINES ? 400 : N_LINES - s * 400);
        memcpy(all + (size_t)s * 400 * info.dim, v, (size_t)rows * info.dim * sizeof *v);
        free(v);
    }
    float d = max_abs_diff(all, ref, (size_t)N_LINES * info.dim);
    cr_assert_leq(d, info.batch_invariant ? 0.0f : 1e-5f, "resumed run differs by %g", d);
    /* again: complete already, nothing done */
    cr_assert_eq(ember_embed_file(&m, 1, &o, &r), EMBER_OK);
    cr_assert(r.already_complete && r.rows == 0 && r.totals.rows == N_LINES);
    /* a resume with another pooling is refused, naming it */
    o.encode.pooling = EMBER_POOLING_MAX;
    cr_assert_eq(ember_embed_file(&m, 1, &o, &r), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(ember_last_error(), "pooling") && strstr(ember_last_error(), "manifest.json"), "%s",
              ember_last_error());
    free(all);
    ember_model_free(m);
    free(ref);
    free(corpus);
    free_lines(lines, N_LINES);
    remove_dir(dir);
}

Test(embed_file, errors_name_the_file_and_line) {
    char *dir = copy_dir(SRC_PATH("tests/data/tiny-bert"));
    ember_model *m = load_model(dir);
    char path[4200], out[4200];
    snprintf(path, sizeof path, "%s/bad.jsonl", dir);
    write_file(path, "{\"text\": \"fine\"}\n{\"text\": \"fine too\"}\n{\"text\": 3}\n");
    snprintf(out, sizeof out, "%s/out.npy", dir);
    ember_embed_options o = ember_embed_default_options();
    o.input = path;
    o.jsonl_field = "text";
    o.output = out;
    o.format = EMBER_OUTPUT_NPY;
    cr_assert_eq(ember_embed_file(&m, 1, &o, NULL), EMBER_ERR_FORMAT);
    cr_assert(strstr(ember_last_error(), "bad.jsonl:3:") && strstr(ember_last_error(), "not a string"), "%s",
              ember_last_error());
    cr_assert(access(out, F_OK) != 0, "a failed run left %s", out);
    o.input = "/no/such/corpus.txt";
    cr_assert_eq(ember_embed_file(&m, 1, &o, NULL), EMBER_ERR_IO);
    cr_assert(strstr(ember_last_error(), "/no/such/corpus.txt: cannot open"), "%s", ember_last_error());
    o.input = path;
    o.output = NULL; /* stdout */
    cr_assert_eq(ember_embed_file(&m, 1, &o, NULL), EMBER_ERR_INVALID_ARGUMENT, ".npy to stdout accepted");
    o.format = EMBER_OUTPUT_JSONL;
    o.resume = 1;
    cr_assert_eq(ember_embed_file(&m, 1, &o, NULL), EMBER_ERR_INVALID_ARGUMENT, "resume without shards accepted");
    ember_model_free(m);
    remove_dir(dir);
}
