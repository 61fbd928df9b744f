/* The public API's promises: thread safety as ember.h states it, the log
 * callback, and the status strings. */
#include <pthread.h>
#include <stdlib.h>
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
    for (int s = EMBER_OK; s <= EMBER_ERR_CANCELLED; s++)
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

/* ... and back: every name parses to its value, anything else is an error
 * listing what is accepted. */
Test(api, names_parse_back) {
    for (int d = EMBER_DTYPE_FP32; d <= EMBER_DTYPE_BF16; d++) {
        ember_dtype got = (ember_dtype)-1;
        cr_assert_eq(ember_dtype_parse(ember_dtype_str((ember_dtype)d), &got), EMBER_OK);
        cr_assert_eq(got, (ember_dtype)d);
    }
    for (int p = EMBER_POOLING_CLS; p <= EMBER_POOLING_MEAN_SQRT_LEN; p++) {
        ember_pooling got = EMBER_POOLING_DEFAULT;
        cr_assert_eq(ember_pooling_parse(ember_pooling_str((ember_pooling)p), &got), EMBER_OK);
        cr_assert_eq(got, (ember_pooling)p);
    }
    ember_dtype dt;
    cr_assert_eq(ember_dtype_parse("fp8", &dt), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(ember_last_error(), "fp32, fp16 or bf16") && strstr(ember_last_error(), "'fp8'"), "%s",
              ember_last_error());
    ember_pooling pl;
    cr_assert_eq(ember_pooling_parse("default", &pl), EMBER_ERR_INVALID_ARGUMENT, "default is not a pooling");
    cr_assert_eq(ember_pooling_parse(NULL, &pl), EMBER_ERR_INVALID_ARGUMENT);
    const struct {
        const char *s;
        ember_device d;
        int32_t i;
    } ok[] = {{"cpu", EMBER_DEVICE_CPU, 0}, {"auto", EMBER_DEVICE_AUTO, 0}, {"cuda", EMBER_DEVICE_CUDA, 0},
              {"cuda:3", EMBER_DEVICE_CUDA, 3}};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        ember_device d;
        int32_t idx = -1;
        cr_assert_eq(ember_device_parse(ok[i].s, &d, &idx), EMBER_OK, "%s", ok[i].s);
        cr_assert(d == ok[i].d && idx == ok[i].i, "%s", ok[i].s);
    }
    const char *bad[] = {"gpu", "cuda:", "cuda:-1", "cuda:x", "cuda:1024", "CPU", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        ember_device d;
        int32_t idx;
        cr_assert_eq(ember_device_parse(bad[i], &d, &idx), EMBER_ERR_INVALID_ARGUMENT, "'%s' accepted", bad[i]);
        cr_assert(strstr(ember_last_error(), "cuda:N"), "%s", ember_last_error());
    }
}

/* The tuning switches as the programs read them: each variable's values,
 * and a value it does not know stops with a message naming the variable
 * (a misspelt switch would otherwise mislabel a benchmark). */
Test(api, tuning_from_the_environment) {
    const char *vars[] = {"EMBER_CPU_KERNELS", "EMBER_CUDA_SYNC", "EMBER_CUDA_ATTENTION", "EMBER_CUDA_GEMM",
                          "EMBER_CUDA_FFN_CHUNK", "EMBER_CUDA_PROFILE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) unsetenv(vars[i]);
    ember_tuning t, zero;
    memset(&t, 0, sizeof t);
    memset(&zero, 0, sizeof zero);
    cr_assert_eq(ember_tuning_from_env(&t), EMBER_OK);
    cr_assert(memcmp(&t, &zero, sizeof t) == 0, "no variable set: the defaults");
    setenv("EMBER_CPU_KERNELS", "generic", 1);
    setenv("EMBER_CUDA_SYNC", "1", 1);
    setenv("EMBER_CUDA_ATTENTION", "wmma", 1);
    setenv("EMBER_CUDA_GEMM", "lt-tune", 1);
    setenv("EMBER_CUDA_FFN_CHUNK", "37", 1);
    setenv("EMBER_CUDA_PROFILE", "0", 1);
    cr_assert_eq(ember_tuning_from_env(&t), EMBER_OK, "%s", ember_last_error());
    cr_assert_eq(t.cpu_kernels, EMBER_CPU_KERNELS_GENERIC);
    cr_assert_eq(t.cuda_sync, EMBER_SWITCH_ON);
    cr_assert_eq(t.cuda_attention, EMBER_CUDA_ATTENTION_WMMA);
    cr_assert_eq(t.cuda_gemm, EMBER_CUDA_GEMM_LT_TUNE);
    cr_assert_eq(t.cuda_ffn_chunk, 37);
    cr_assert_eq(t.cuda_profile, EMBER_SWITCH_OFF);
    /* every family by name (the enum's values in order: avx2 came last) */
    const char *const families[] = {"auto", "generic", "avx512", "avx2"};
    for (int i = 0; i < 4; i++) {
        setenv("EMBER_CPU_KERNELS", families[i], 1);
        cr_assert_eq(ember_tuning_from_env(&t), EMBER_OK, "%s", ember_last_error());
        cr_assert_eq(t.cpu_kernels, (ember_cpu_kernels)i, "EMBER_CPU_KERNELS=%s", families[i]);
    }
    setenv("EMBER_CPU_KERNELS", "generic", 1);
    const char *const bad[][3] = {{"EMBER_CUDA_GEMM", "cublaslt", "blas, lt or lt-tune"},
                                  {"EMBER_CUDA_ATTENTION", "flash", "mma or wmma"},
                                  {"EMBER_CUDA_FFN_CHUNK", "4k", "token count"},
                                  {"EMBER_CPU_KERNELS", "sse", "generic"},
                                  {"EMBER_CUDA_PROFILE", "yes", "0 or 1"}};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char *old = strdup(getenv(bad[i][0]));
        setenv(bad[i][0], bad[i][1], 1);
        cr_expect_eq(ember_tuning_from_env(&t), EMBER_ERR_INVALID_ARGUMENT, "%s=%s was accepted", bad[i][0],
                     bad[i][1]);
        cr_expect(strstr(ember_last_error(), bad[i][0]) && strstr(ember_last_error(), bad[i][2]), "message: %s",
                  ember_last_error());
        setenv(bad[i][0], old, 1);
        free(old);
    }
    /* the CPU backend refuses an unknown family; a real one it lacks is named (cpu_ops tests) */
    ember_model_params p = ember_model_default_params();
    p.tuning.cpu_kernels = (ember_cpu_kernels)77;
    ember_model *m = NULL;
    cr_assert_eq(ember_model_load(TINY_DIR, &p, &m), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert_null(m);
    p.tuning.cpu_kernels = EMBER_CPU_KERNELS_GENERIC;
    cr_assert_eq(ember_model_load(TINY_DIR, &p, &m), EMBER_OK, "%s", ember_last_error());
    ember_model_info info;
    ember_model_get_info(m, &info);
    cr_assert(strstr(info.device_name, "generic"), "%s", info.device_name);
    cr_assert_eq(info.batch_invariant, 0);
    ember_model_free(m);
    /* AVX2 where the processor has AVX2 and FMA (batch-invariant), an
     * error naming the family elsewhere */
    int avx2 = 0;
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
    __builtin_cpu_init();
    avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    p.tuning.cpu_kernels = EMBER_CPU_KERNELS_AVX2;
    m = NULL;
    if (avx2) {
        cr_assert_eq(ember_model_load(TINY_DIR, &p, &m), EMBER_OK, "%s", ember_last_error());
        ember_model_get_info(m, &info);
        cr_assert(strstr(info.device_name, "avx2"), "%s", info.device_name);
        cr_assert_eq(info.batch_invariant, 1);
        ember_model_free(m);
    } else {
        cr_assert_eq(ember_model_load(TINY_DIR, &p, &m), EMBER_ERR_UNSUPPORTED);
        cr_assert(strstr(ember_last_error(), "avx2"), "%s", ember_last_error());
    }
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) unsetenv(vars[i]);
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
