/* Models by name from the Hugging Face cache (ember_hub_resolve, and
 * ember_model_load given an id): caches laid out here by hand as
 * huggingface_hub lays them out, the environment variables that place the
 * cache, bare names, revisions, incomplete snapshots, bad ids, and the
 * errors when the hub is unreachable or off limits; ember_hub_pull's progress
 * callback, cancelling and resuming, against tests/hub/fake_hub.py. The
 * downloads' other cases, and the real huggingface_hub, are
 * tests/script_hub.sh. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "test_util.h"

#define COMMIT_A "0123456789abcdef0123456789abcdef01234567"
#define COMMIT_B "89abcdef0123456789abcdef0123456789abcdef"
/* Nothing listens on the discard port: a connection is refused at once. */
#define CLOSED_ENDPOINT "http://127.0.0.1:9"

static const char *tiny_files[] = {"config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"};

static void clean_env(void) {
    static const char *vars[] = {"HF_HOME",  "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT",
                                 "HF_TOKEN", "HF_TOKEN_PATH", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE",
                                 "TRANSFORMERS_OFFLINE", "XDG_CACHE_HOME"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
    setenv("HF_ENDPOINT", CLOSED_ENDPOINT, 1); /* never the internet */
}

static char *temp_dir(void) {
    char tmpl[] = "/tmp/ember-hub-XXXXXX";
    cr_assert(mkdtemp(tmpl));
    return strdup(tmpl);
}

static void mkdirs(const char *path) {
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", path);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void copy_file(const char *from, const char *to) {
    size_t n;
    char *data = read_file(from, &n);
    FILE *f = fopen(to, "wb");
    cr_assert(f, "cannot write %s", to);
    cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
    free(data);
}

/* <cache>/models--org--name as huggingface_hub writes it: each file a blob,
 * snapshots/<commit>/<file> -> ../../blobs/<etag>, and refs/<ref> = commit
 * (no ref when ref is NULL). Files from tests/data/tiny-bert. */
static void cache_model(const char *cache, const char *id, const char *commit, const char *ref) {
    char repo[1024], path[2048], target[256];
    int k = snprintf(repo, sizeof repo, "%s/models--", cache);
    for (const char *p = id; *p; p++) k += snprintf(repo + k, sizeof repo - (size_t)k, *p == '/' ? "--" : "%c", *p);
    snprintf(path, sizeof path, "%s/blobs", repo);
    mkdirs(path);
    snprintf(path, sizeof path, "%s/snapshots/%s", repo, commit);
    mkdirs(path);
    for (size_t i = 0; i < sizeof tiny_files / sizeof tiny_files[0]; i++) {
        char src[1024];
        snprintf(src, sizeof src, "%s/%s", TINY_DIR, tiny_files[i]);
        snprintf(path, sizeof path, "%s/blobs/etag-%s-%zu", repo, commit, i);
        copy_file(src, path);
        snprintf(target, sizeof target, "../../blobs/etag-%s-%zu", commit, i);
        snprintf(path, sizeof path, "%s/snapshots/%s/%s", repo, commit, tiny_files[i]);
        cr_assert_eq(symlink(target, path), 0, "symlink %s: %s", path, strerror(errno));
    }
    if (ref) {
        snprintf(path, sizeof path, "%s/refs", repo);
        mkdirs(path);
        snprintf(path, sizeof path, "%s/refs/%s", repo, ref);
        write_file(path, commit);
    }
}

static void expect_dir(const char *id, const char *rev, const char *want) {
    char dir[4096];
    ember_status st = ember_hub_resolve(id, rev, dir, sizeof dir);
    cr_assert_eq(st, EMBER_OK, "resolve %s@%s: %s", id, rev ? rev : "(main)", ember_last_error());
    cr_expect_str_eq(dir, want);
}

/* The error names the model, the revision, the cache, and more. */
static void expect_error(ember_status got, ember_status want, const char *id, const char *rev, const char *cache,
                         const char *more) {
    const char *msg = ember_last_error();
    cr_assert_eq(got, want, "status %d (%s), expected %d", got, msg, want);
    char buf[256];
    cr_expect(strstr(msg, id), "message does not name the id '%s': %s", id, msg);
    snprintf(buf, sizeof buf, "revision %s", rev);
    cr_expect(strstr(msg, buf), "message does not name '%s': %s", buf, msg);
    cr_expect(strstr(msg, cache), "message does not name the cache %s: %s", cache, msg);
    if (more) cr_expect(strstr(msg, more), "message does not say '%s': %s", more, msg);
}

Test(hub, resolve_and_load_from_the_cache) {
    clean_env();
    char *cache = temp_dir();
    setenv("HF_HUB_CACHE", cache, 1);
    cache_model(cache, "ember-test/tiny", COMMIT_A, "main");
    char want[2048];
    snprintf(want, sizeof want, "%s/models--ember-test--tiny/snapshots/%s", cache, COMMIT_A);
    expect_dir("ember-test/tiny", NULL, want);
    expect_dir("ember-test/tiny", "", want);
    expect_dir("ember-test/tiny", "main", want);

    /* by id (from the cache, so the closed endpoint is never asked) and by
     * directory: the same model */
    ember_model *by_id = load_model("ember-test/tiny"), *by_dir = load_model(TINY_DIR);
    ember_model_info info;
    ember_model_get_info(by_id, &info);
    cr_expect_str_eq(info.name, "ember-test/tiny");
    const char *texts[] = {"models by name", "from the hugging face cache"};
    float a[2 * 64], b[2 * 64];
    cr_assert_eq(ember_encode(by_id, texts, NULL, 2, NULL, a, NULL), EMBER_OK);
    cr_assert_eq(ember_encode(by_dir, texts, NULL, 2, NULL, b, NULL), EMBER_OK);
    cr_expect_eq(memcmp(a, b, sizeof a), 0, "the model loaded by id differs from the directory's");
    ember_model_free(by_id);
    ember_model_free(by_dir);
    remove_dir(cache);
}

Test(hub, cache_directory_from_the_environment) {
    clean_env();
    char *home = temp_dir(), *other = temp_dir(), *xdg = temp_dir();
    char cache[1024], xdg_cache[1024], want[2048];
    snprintf(cache, sizeof cache, "%s/hub", home);
    snprintf(xdg_cache, sizeof xdg_cache, "%s/huggingface/hub", xdg);
    cache_model(cache, "ember-test/tiny", COMMIT_A, "main");
    cache_model(other, "ember-test/tiny", COMMIT_B, "main");
    cache_model(xdg_cache, "ember-test/tiny", COMMIT_A, "main");

    setenv("XDG_CACHE_HOME", xdg, 1); /* ${XDG_CACHE_HOME}/huggingface/hub */
    snprintf(want, sizeof want, "%s/models--ember-test--tiny/snapshots/%s", xdg_cache, COMMIT_A);
    expect_dir("ember-test/tiny", NULL, want);
    setenv("HF_HOME", home, 1); /* $HF_HOME/hub over that */
    snprintf(want, sizeof want, "%s/models--ember-test--tiny/snapshots/%s", cache, COMMIT_A);
    expect_dir("ember-test/tiny", NULL, want);
    setenv("HF_HUB_CACHE", other, 1); /* $HF_HUB_CACHE over both */
    snprintf(want, sizeof want, "%s/models--ember-test--tiny/snapshots/%s", other, COMMIT_B);
    expect_dir("ember-test/tiny", NULL, want);
    /* the message of a miss names the cache searched */
    char dir[4096];
    expect_error(ember_hub_resolve("ember-test/absent", NULL, dir, sizeof dir), EMBER_ERR_IO, "ember-test/absent",
                 "main", other, "ember pull ember-test/absent");
    remove_dir(home);
    remove_dir(other);
    remove_dir(xdg);
}

Test(hub, bare_names_as_sentence_transformers_reads_them) {
    clean_env();
    char *cache = temp_dir();
    setenv("HF_HUB_CACHE", cache, 1);
    char want[2048], dir[4096];
    cache_model(cache, "tiny", COMMIT_B, "main");
    snprintf(want, sizeof want, "%s/models--tiny/snapshots/%s", cache, COMMIT_B);
    expect_dir("tiny", NULL, want);
    cache_model(cache, "sentence-transformers/tiny", COMMIT_A, "main"); /* tried first */
    snprintf(want, sizeof want, "%s/models--sentence-transformers--tiny/snapshots/%s", cache, COMMIT_A);
    expect_dir("tiny", NULL, want);
    ember_model *m = load_model("tiny");
    ember_model_info info;
    ember_model_get_info(m, &info);
    cr_expect_str_eq(info.name, "sentence-transformers/tiny");
    ember_model_free(m);
    /* a miss names both places looked at */
    expect_error(ember_hub_resolve("absent", NULL, dir, sizeof dir), EMBER_ERR_IO, "absent", "main", cache,
                 "models--sentence-transformers--absent");
    cr_expect(strstr(ember_last_error(), "models--absent"), "%s", ember_last_error());
    remove_dir(cache);
}

Test(hub, revisions) {
    clean_env();
    char *cache = temp_dir();
    setenv("HF_HUB_CACHE", cache, 1);
    cache_model(cache, "ember-test/tiny", COMMIT_A, "v1");
    cache_model(cache, "ember-test/tiny", COMMIT_B, NULL);
    char want[2048], dir[4096], path[2048];
    snprintf(want, sizeof want, "%s/models--ember-test--tiny/snapshots/%s", cache, COMMIT_A);
    expect_dir("ember-test/tiny", "v1", want);
    expect_dir("ember-test/tiny", COMMIT_A, want);
    snprintf(want, sizeof want, "%s/models--ember-test--tiny/snapshots/%s", cache, COMMIT_B);
    expect_dir("ember-test/tiny", COMMIT_B, want); /* a commit needs no ref */
    /* refs/main is missing: the error says which ref and what to run */
    expect_error(ember_hub_resolve("ember-test/tiny", NULL, dir, sizeof dir), EMBER_ERR_IO, "ember-test/tiny", "main",
                 cache, "refs/main is missing");
    cr_expect(strstr(ember_last_error(), "run 'ember pull ember-test/tiny'"), "%s", ember_last_error());
    expect_error(ember_hub_resolve("ember-test/tiny", "v2", dir, sizeof dir), EMBER_ERR_IO, "ember-test/tiny", "v2",
                 cache, "ember pull ember-test/tiny --revision v2");
    /* a ref another tool wrote with a newline; a ref holding garbage */
    snprintf(path, sizeof path, "%s/models--ember-test--tiny/refs/main", cache);
    write_file(path, COMMIT_B "\n");
    expect_dir("ember-test/tiny", NULL, want);
    write_file(path, "not a commit");
    expect_error(ember_hub_resolve("ember-test/tiny", NULL, dir, sizeof dir), EMBER_ERR_IO, "ember-test/tiny", "main",
                 cache, "holds no commit hash");
    /* a ref to a snapshot that is not there */
    write_file(path, "ffffffffffffffffffffffffffffffffffffffff");
    expect_error(ember_hub_resolve("ember-test/tiny", NULL, dir, sizeof dir), EMBER_ERR_IO, "ember-test/tiny", "main",
                 cache, "snapshots/ffffffffffffffffffffffffffffffffffffffff is missing");
    remove_dir(cache);
}

Test(hub, incomplete_snapshots_are_not_trusted) {
    clean_env();
    char *cache = temp_dir();
    setenv("HF_HUB_CACHE", cache, 1);
    setenv("HF_HUB_OFFLINE", "1", 1);
    cache_model(cache, "ember-test/tiny", COMMIT_A, "main");
    char snap[2048], path[2300], dir[4096];
    snprintf(snap, sizeof snap, "%s/models--ember-test--tiny/snapshots/%s", cache, COMMIT_A);
    /* a blob gone (its link dangles) */
    snprintf(path, sizeof path, "%s/models--ember-test--tiny/blobs/etag-%s-1", cache, COMMIT_A);
    cr_assert_eq(unlink(path), 0);
    expect_error(ember_hub_resolve("ember-test/tiny", NULL, dir, sizeof dir), EMBER_ERR_IO, "ember-test/tiny", "main",
                 cache, "lacks model.safetensors");
    ember_model *m = NULL;
    ember_model_params p = ember_model_default_params();
    expect_error(ember_model_load("ember-test/tiny", &p, &m), EMBER_ERR_IO, "ember-test/tiny", "main", cache,
                 "HF_HUB_OFFLINE is set");
    cr_expect_null(m);
    /* sharded: every shard the index names */
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", snap);
    write_file(path, "{\"weight_map\": {\"a\": \"model-00001-of-00002.safetensors\", "
                     "\"b\": \"model-00002-of-00002.safetensors\"}}");
    snprintf(path, sizeof path, "%s/model-00001-of-00002.safetensors", snap);
    write_file(path, "x");
    expect_error(ember_hub_resolve("ember-test/tiny", NULL, dir, sizeof dir), EMBER_ERR_IO, "ember-test/tiny", "main",
                 cache, "lacks model-00002-of-00002.safetensors");
    snprintf(path, sizeof path, "%s/model-00002-of-00002.safetensors", snap);
    write_file(path, "x");
    cr_expect_eq(ember_hub_resolve("ember-test/tiny", NULL, dir, sizeof dir), EMBER_OK, "%s", ember_last_error());
    /* a sentence-transformers module whose config is not there */
    snprintf(path, sizeof path, "%s/modules.json", snap);
    write_file(path, "[{\"path\": \"\", \"type\": \"sentence_transformers.models.Transformer\"},"
                     " {\"path\": \"1_Pooling\", \"type\": \"sentence_transformers.models.Pooling\"},"
                     " {\"path\": \"2_Normalize\", \"type\": \"sentence_transformers.models.Normalize\"}]");
    expect_error(ember_hub_resolve("ember-test/tiny", NULL, dir, sizeof dir), EMBER_ERR_IO, "ember-test/tiny", "main",
                 cache, "lacks 1_Pooling/config.json");
    snprintf(path, sizeof path, "%s/1_Pooling", snap);
    cr_assert_eq(mkdir(path, 0755), 0);
    snprintf(path, sizeof path, "%s/1_Pooling/config.json", snap);
    write_file(path, "{\"pooling_mode_mean_tokens\": true}");
    cr_expect_eq(ember_hub_resolve("ember-test/tiny", NULL, dir, sizeof dir), EMBER_OK, "%s", ember_last_error());
    /* no tokenizer */
    snprintf(path, sizeof path, "%s/vocab.txt", snap);
    cr_assert_eq(unlink(path), 0);
    expect_error(ember_hub_resolve("ember-test/tiny", NULL, dir, sizeof dir), EMBER_ERR_IO, "ember-test/tiny", "main",
                 cache, "lacks tokenizer.json or vocab.txt");
    remove_dir(cache);
}

Test(hub, what_is_not_an_id) {
    clean_env();
    char dir[4096];
    static const char *bad[] = {"",        "../x",    "a/b/c",  "a--b/c", "-a/b",  "a/b.git", "/abs/path",
                                "a/",      "./a",     "a b/c",  "a/b\n",  "a/..",  "org/na$me"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cr_expect_eq(ember_hub_resolve(bad[i], NULL, dir, sizeof dir), EMBER_ERR_INVALID_ARGUMENT, "'%s' accepted",
                     bad[i]);
        if (*bad[i]) cr_expect(strstr(ember_last_error(), bad[i]), "%s", ember_last_error());
    }
    char longid[120];
    memset(longid, 'a', sizeof longid - 1);
    longid[sizeof longid - 1] = '\0';
    cr_expect_eq(ember_hub_resolve(longid, NULL, dir, sizeof dir), EMBER_ERR_INVALID_ARGUMENT);
    static const char *bad_revs[] = {"../../etc", "a//b", "/main", "ma in", "main/"};
    for (size_t i = 0; i < sizeof bad_revs / sizeof bad_revs[0]; i++) {
        cr_expect_eq(ember_hub_resolve("org/name", bad_revs[i], dir, sizeof dir), EMBER_ERR_INVALID_ARGUMENT,
                     "revision '%s' accepted", bad_revs[i]);
        cr_expect(strstr(ember_last_error(), bad_revs[i]), "%s", ember_last_error());
    }
    cr_expect_eq(ember_hub_resolve(NULL, NULL, dir, sizeof dir), EMBER_ERR_INVALID_ARGUMENT);
    /* a missing path that is no id is a missing directory, as before */
    ember_model *m = NULL;
    cr_expect_eq(ember_model_load("no/such/dir", NULL, &m), EMBER_ERR_IO);
    cr_expect(strstr(ember_last_error(), "no/such/dir: model directory not found"), "%s", ember_last_error());
}

Test(hub, small_buffer) {
    clean_env();
    char *cache = temp_dir();
    setenv("HF_HUB_CACHE", cache, 1);
    cache_model(cache, "ember-test/tiny", COMMIT_A, "main");
    char dir[16];
    cr_expect_eq(ember_hub_resolve("ember-test/tiny", NULL, dir, sizeof dir), EMBER_ERR_BUFFER_TOO_SMALL);
    cr_expect(strstr(ember_last_error(), "does not fit in 16 bytes"), "%s", ember_last_error());
    remove_dir(cache);
}

Test(hub, offline_never_connects) {
    clean_env();
    char *cache = temp_dir();
    setenv("HF_HUB_CACHE", cache, 1);
    setenv("HF_HUB_OFFLINE", "1", 1);
    cache_model(cache, "ember-test/tiny", COMMIT_A, "main");
    char dir[4096], want[2048];
    snprintf(want, sizeof want, "%s/models--ember-test--tiny/snapshots/%s", cache, COMMIT_A);
    /* a pull is a resolve */
    cr_assert_eq(ember_hub_pull("ember-test/tiny", NULL, NULL, NULL, dir, sizeof dir), EMBER_OK, "%s",
                 ember_last_error());
    cr_expect_str_eq(dir, want);
    expect_error(ember_hub_pull("ember-test/absent", NULL, NULL, NULL, dir, sizeof dir), EMBER_ERR_IO,
                 "ember-test/absent", "main", cache, "HF_HUB_OFFLINE is set, so nothing is downloaded");
    setenv("HF_HUB_OFFLINE", "0", 1);
    setenv("TRANSFORMERS_OFFLINE", "true", 1); /* transformers' spelling counts too */
    expect_error(ember_hub_pull("ember-test/absent", NULL, NULL, NULL, dir, sizeof dir), EMBER_ERR_IO,
                 "ember-test/absent", "main", cache, "HF_HUB_OFFLINE is set");
    remove_dir(cache);
}

Test(hub, unreachable_hub) {
    clean_env();
    char *cache = temp_dir();
    setenv("HF_HUB_CACHE", cache, 1);
    char dir[4096];
    time_t t0 = time(NULL);
    expect_error(ember_hub_pull("ember-test/absent", "v1", NULL, NULL, dir, sizeof dir), EMBER_ERR_IO,
                 "ember-test/absent", "v1", cache, "cannot reach " CLOSED_ENDPOINT);
    ember_model *m = NULL;
    ember_model_params p = ember_model_default_params();
    p.revision = "v1";
    expect_error(ember_model_load("ember-test/absent", &p, &m), EMBER_ERR_IO, "ember-test/absent", "v1", cache,
                 "cannot reach " CLOSED_ENDPOINT);
    cr_expect_null(m);
    cr_expect_lt(time(NULL) - t0, 20, "a refused connection must fail fast");
    /* nothing was written for a model the hub never described */
    char path[2048];
    snprintf(path, sizeof path, "%s/models--ember-test--absent", cache);
    cr_expect_neq(access(path, F_OK), 0, "%s was created", path);

    setenv("HF_ENDPOINT", "ftp://example.org", 1);
    cr_expect_eq(ember_hub_pull("ember-test/absent", NULL, NULL, NULL, dir, sizeof dir), EMBER_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(ember_last_error(), "HF_ENDPOINT 'ftp://example.org'"), "%s", ember_last_error());
    setenv("HF_ENDPOINT", CLOSED_ENDPOINT, 1);
    setenv("HF_TOKEN", "hf_abc\r\nX-Injected: 1", 1); /* never becomes a header */
    cr_expect_eq(ember_hub_pull("ember-test/absent", NULL, NULL, NULL, dir, sizeof dir), EMBER_ERR_INVALID_ARGUMENT);
    cr_expect(strstr(ember_last_error(), "HF_TOKEN"), "%s", ember_last_error());
    remove_dir(cache);
}

/* ---- ember_hub_pull against tests/hub/fake_hub.py ------------------------------------ */

static pid_t hub_pid;

/* Start the fake hub; its endpoint into endpoint[cap] (skips without python3). */
static void fake_hub_start(char *endpoint, size_t cap) {
    if (system("python3 -c 'import http.server' >/dev/null 2>&1") != 0) {
        const char *req = getenv("EMBER_REQUIRE_WEIGHTS");
        if (req && strcmp(req, "1") == 0) cr_assert_fail("python3 is missing (EMBER_REQUIRE_WEIGHTS=1)");
        cr_skip_test("python3 is missing");
    }
    int fds[2];
    cr_assert_eq(pipe(fds), 0);
    hub_pid = fork();
    cr_assert_geq(hub_pid, 0);
    if (hub_pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        close(fds[1]);
        execlp("python3", "python3", SRC_PATH("tests/hub/fake_hub.py"), (char *)NULL);
        _exit(127);
    }
    close(fds[1]);
    FILE *f = fdopen(fds[0], "r");
    char line[256] = "";
    cr_assert(fgets(line, sizeof line, f), "the fake hub did not start");
    fclose(f);
    cr_assert(strncmp(line, "HF_ENDPOINT=", 12) == 0, "%s", line);
    line[strcspn(line, "\n")] = '\0';
    snprintf(endpoint, cap, "%s", line + 12);
}

static void fake_hub_stop(void) {
    if (hub_pid > 0) {
        kill(hub_pid, SIGTERM);
        waitpid(hub_pid, NULL, 0);
        hub_pid = 0;
    }
}

typedef struct {
    int calls, completed, bad, cancel_weights;
    int64_t first_done, last_done, total;
    char last_file[256], files_done[1024];
} progress_log;

static int on_progress(const char *file, int32_t idx, int32_t count, int64_t done, int64_t total, void *user) {
    progress_log *l = user;
    if (strcmp(file, l->last_file) != 0) { /* a new file */
        snprintf(l->last_file, sizeof l->last_file, "%s", file);
        l->last_done = -1;
        if (strcmp(file, "model.safetensors") == 0) l->first_done = done;
    }
    if (idx < 1 || idx > count || done < l->last_done || (total >= 0 && done > total)) l->bad++;
    l->last_done = done;
    l->calls++;
    if (total >= 0 && done == total) {
        l->completed++;
        strncat(l->files_done, file, sizeof l->files_done - strlen(l->files_done) - 2);
        strcat(l->files_done, ",");
        if (strcmp(file, "model.safetensors") == 0) l->total = total;
    }
    return l->cancel_weights && strcmp(file, "model.safetensors") == 0 && done > 0;
}

Test(hub, pull_progress_cancel_and_resume, .fini = fake_hub_stop) {
    clean_env();
    char endpoint[128], dir[4096], part[4096];
    fake_hub_start(endpoint, sizeof endpoint);
    setenv("HF_ENDPOINT", endpoint, 1);
    char *cache = temp_dir();
    setenv("HF_HUB_CACHE", cache, 1);
    struct stat weights;
    cr_assert_eq(stat(TINY_DIR "/model.safetensors", &weights), 0);

    /* stopped by the callback in the middle of the weights */
    progress_log a = {.cancel_weights = 1};
    expect_error(ember_hub_pull("ember-test/tiny-bert", NULL, on_progress, &a, dir, sizeof dir), EMBER_ERR_IO,
                 "ember-test/tiny-bert", "main", cache, "model.safetensors: download stopped after");
    cr_expect(strstr(ember_last_error(), "resume"), "%s", ember_last_error());
    cr_expect_eq(a.bad, 0, "progress out of order");
    cr_expect_str_eq(a.files_done, "config.json,tokenizer_config.json,vocab.txt,");
    expect_error(ember_hub_resolve("ember-test/tiny-bert", NULL, dir, sizeof dir), EMBER_ERR_IO, "ember-test/tiny-bert",
                 "main", cache, NULL);
    snprintf(part, sizeof part, "%s/models--ember-test--tiny-bert/blobs", cache);
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "test \"$(cat %s/*.incomplete | wc -c)\" -gt 0", part);
    cr_expect_eq(system(cmd), 0, "no partial download kept to resume");

    /* resumed: only the weights are fetched, from where they stopped */
    progress_log b = {0};
    cr_assert_eq(ember_hub_pull("ember-test/tiny-bert", NULL, on_progress, &b, dir, sizeof dir), EMBER_OK, "%s",
                 ember_last_error());
    cr_expect_eq(b.bad, 0, "progress out of order");
    cr_expect_str_eq(b.files_done, "model.safetensors,");
    cr_expect_gt(b.first_done, 0, "the download started over instead of resuming");
    cr_expect_eq(b.total, (int64_t)weights.st_size);
    char want[4096];
    cr_assert_eq(ember_hub_resolve("ember-test/tiny-bert", NULL, want, sizeof want), EMBER_OK);
    cr_expect_str_eq(dir, want);
    ember_model *m = load_model("ember-test/tiny-bert");
    ember_model_free(m);
    fake_hub_stop();
    remove_dir(cache);
}
