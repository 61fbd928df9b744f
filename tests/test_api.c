/* The public API's promises: thread safety as ember.h states it, the log
 * callback, and the status strings. */
#include <pthread.h>
#include <string.h>

#include "test_util.h"

static const char *texts[] = {"the quick brown fox", "", "Hello, World!", "time flies like an arrow",
                              "one two three four five six seven eight nine ten"};
#define N_TEXTS 5

typedef struct {
    ember_model *m;
    const float *want;
    int ok;
} worker;

static void *encode_worker(void *arg) {
    worker *w = arg;
    float got[N_TEXTS * 64];
    w->ok = 1;
    for (int it = 0; it < 30 && w->ok; it++) {
        if (ember_encode(w->m, texts, NULL, N_TEXTS, NULL, got, NULL) != EMBER_OK) w->ok = 0;
        else if (max_abs_diff(got, w->want, N_TEXTS * 64) > 1e-6f) w->ok = 0;
        ember_token toks[64];
        int32_t n;
        if (ember_tokenize(w->m, texts[it % N_TEXTS], -1, NULL, 0, NULL, toks, 64, &n, NULL) != EMBER_OK) w->ok = 0;
    }
    return NULL;
}

Test(api, one_model_shared_by_threads) {
    ember_model *m = load_model(TINY_DIR);
    float want[N_TEXTS * 64];
    cr_assert_eq(ember_encode(m, texts, NULL, N_TEXTS, NULL, want, NULL), EMBER_OK);
    pthread_t th[4];
    worker w[4];
    for (int i = 0; i < 4; i++) {
        w[i] = (worker){m, want, 0};
        cr_assert_eq(pthread_create(&th[i], NULL, encode_worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        cr_expect(w[i].ok, "thread %d got a different or failed result", i);
    }
    ember_model_free(m);
}

static int n_logged;
static char first_info[512];
static void log_cb(ember_log_level level, const char *msg, void *user) {
    (void)user;
    if (level == EMBER_LOG_INFO && !n_logged++) strncpy(first_info, msg, sizeof first_info - 1);
}

Test(api, log_callback_and_status) {
    ember_log_set(log_cb, NULL);
    ember_model *m = load_model(TINY_DIR);
    ember_log_set(NULL, NULL);
    cr_assert_gt(n_logged, 0, "loading logs what it loaded");
    cr_assert(strstr(first_info, "tiny-bert") && strstr(first_info, "2 layers"), "%s", first_info);
    ember_model_free(m);
    for (int s = EMBER_OK; s <= EMBER_ERR_BACKEND; s++)
        cr_assert(strlen(ember_status_str((ember_status)s)) > 1 && strcmp(ember_status_str((ember_status)s), "unknown status"));
    cr_assert_str_eq(ember_status_str((ember_status)999), "unknown status");
}

/* The names the CLI takes (--dtype) and writes (manifests, ember info). */
Test(api, dtype_and_pooling_names) {
    cr_assert_str_eq(ember_dtype_str(EMBER_DTYPE_FP32), "fp32");
    cr_assert_str_eq(ember_dtype_str(EMBER_DTYPE_FP16), "fp16");
    cr_assert_str_eq(ember_dtype_str(EMBER_DTYPE_BF16), "bf16");
    cr_assert_str_eq(ember_dtype_str((ember_dtype)7), "unknown");
    const char *pooling[] = {"default", "cls", "mean", "max", "mean_sqrt_len"};
    for (int p = EMBER_POOLING_DEFAULT; p <= EMBER_POOLING_MEAN_SQRT_LEN; p++)
        cr_assert_str_eq(ember_pooling_str((ember_pooling)p), pooling[p]);
    cr_assert_str_eq(ember_pooling_str((ember_pooling)9), "unknown");
}

Test(api, errors_are_per_thread) {
    ember_model *m = NULL;
    cr_assert_eq(ember_model_load("/no/such/dir", NULL, &m), EMBER_ERR_IO);
    cr_assert(strstr(ember_last_error(), "/no/such/dir"));
}

Test(api, cosine) {
    float a[3] = {1, 0, 0}, b[3] = {0, 2, 0}, c[3] = {3, 0, 0}, z[3] = {0, 0, 0};
    cr_assert_float_eq(ember_cosine(a, b, 3), 0.0f, 1e-7);
    cr_assert_float_eq(ember_cosine(a, c, 3), 1.0f, 1e-7);
    cr_assert_float_eq(ember_cosine(a, z, 3), 0.0f, 1e-7);
}
