/* The names of the API's enums, both ways: what the programs print and
 * parse (--dtype, --pooling, --device) and the environment's tuning
 * switches. One table per enum. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"

typedef struct {
    const char *name;
    int value;
} name_value;

static const name_value DTYPES[] = {{"fp32", EMBER_DTYPE_FP32}, {"fp16", EMBER_DTYPE_FP16}, {"bf16", EMBER_DTYPE_BF16}};
static const name_value POOLINGS[] = {{"default", EMBER_POOLING_DEFAULT},
                                      {"cls", EMBER_POOLING_CLS},
                                      {"mean", EMBER_POOLING_MEAN},
                                      {"max", EMBER_POOLING_MAX},
                                      {"mean_sqrt_len", EMBER_POOLING_MEAN_SQRT_LEN}};
static const name_value PRECISIONS[] = {{"float32", EMBER_PRECISION_FLOAT32}, {"float16", EMBER_PRECISION_FLOAT16},
                                        {"int8", EMBER_PRECISION_INT8},       {"uint8", EMBER_PRECISION_UINT8},
                                        {"binary", EMBER_PRECISION_BINARY},   {"ubinary", EMBER_PRECISION_UBINARY}};
static const name_value CPU_KERNELS[] = {{"auto", EMBER_CPU_KERNELS_AUTO},
                                         {"generic", EMBER_CPU_KERNELS_GENERIC},
                                         {"avx2", EMBER_CPU_KERNELS_AVX2},
                                         {"avx512", EMBER_CPU_KERNELS_AVX512}};
static const name_value CUDA_ATTENTION[] = {{"mma", EMBER_CUDA_ATTENTION_MMA}, {"wmma", EMBER_CUDA_ATTENTION_WMMA}};
static const name_value CUDA_GEMM[] = {
    {"blas", EMBER_CUDA_GEMM_BLAS}, {"lt", EMBER_CUDA_GEMM_LT}, {"lt-tune", EMBER_CUDA_GEMM_LT_TUNE}};
static const name_value SWITCHES[] = {{"0", EMBER_SWITCH_OFF}, {"1", EMBER_SWITCH_ON}};

#define COUNT(t) (sizeof t / sizeof *t)

static const char *name_of(const name_value *t, size_t n, int value) {
    for (size_t i = 0; i < n; i++)
        if (t[i].value == value) return t[i].name;
    return "unknown";
}

/* The value named s; else an error "<what> must be a, b or c, got 's'". */
static ember_status value_of(const name_value *t, size_t n, const char *s, const char *what, int *out) {
    for (size_t i = 0; s && i < n; i++)
        if (strcmp(t[i].name, s) == 0) {
            *out = t[i].value;
            return EMBER_OK;
        }
    char list[256];
    size_t len = 0;
    for (size_t i = 0; i < n && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", i == 0 ? "" : i + 1 == n ? " or " : ", ",
                                t[i].name);
    return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "%s must be %s, got '%s'", what, list, s ? s : "(null)");
}

const char *ember_dtype_str(ember_dtype dtype) { return name_of(DTYPES, COUNT(DTYPES), (int)dtype); }
const char *ember_pooling_str(ember_pooling pooling) { return name_of(POOLINGS, COUNT(POOLINGS), (int)pooling); }

const char *ember_precision_str(ember_precision p) { return name_of(PRECISIONS, COUNT(PRECISIONS), (int)p); }

ember_status ember_precision_parse(const char *s, ember_precision *out) {
    int v = 0;
    ember_status st = value_of(PRECISIONS, COUNT(PRECISIONS), s, "the precision", &v);
    if (st == EMBER_OK) *out = (ember_precision)v;
    return st;
}

ember_status ember_dtype_parse(const char *s, ember_dtype *out) {
    int v = 0;
    ember_status st = value_of(DTYPES, COUNT(DTYPES), s, "the dtype", &v);
    if (st == EMBER_OK) *out = (ember_dtype)v;
    return st;
}

ember_status ember_pooling_parse(const char *s, ember_pooling *out) {
    /* "default" is the enum's zero, not a pooling a user names */
    int v = 0;
    ember_status st = value_of(POOLINGS + 1, COUNT(POOLINGS) - 1, s, "the pooling", &v);
    if (st == EMBER_OK) *out = (ember_pooling)v;
    return st;
}

/* A decimal integer in [lo, hi], the whole string. */
static int parse_long(const char *s, long lo, long hi, long *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

ember_status ember_device_parse(const char *s, ember_device *device, int32_t *index) {
    long n = 0;
    if (s && strcmp(s, "cpu") == 0) *device = EMBER_DEVICE_CPU;
    else if (s && strcmp(s, "auto") == 0) *device = EMBER_DEVICE_AUTO;
    else if (s && strcmp(s, "cuda") == 0) *device = EMBER_DEVICE_CUDA;
    else if (s && strncmp(s, "cuda:", 5) == 0 && parse_long(s + 5, 0, 1023, &n)) *device = EMBER_DEVICE_CUDA;
    else
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                          "the device must be cpu, cuda, cuda:N (N in 0..1023) or auto, got '%s'", s ? s : "(null)");
    if (index) *index = (int32_t)n;
    return EMBER_OK;
}

/* ---- the environment's tuning switches ---------------------------------------------- */

static ember_status env_choice(const char *var, const name_value *t, size_t n, int *field) {
    const char *v = getenv(var);
    return v && *v ? value_of(t, n, v, var, field) : EMBER_OK;
}

ember_status ember_tuning_from_env(ember_tuning *t) {
    if (!t) return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_tuning_from_env: tuning is NULL");
    int v;
    ember_status st;
#define CHOICE(var, table, field, type)                                                                               \
    v = (int)t->field;                                                                                                \
    if ((st = env_choice(var, table, COUNT(table), &v))) return st;                                                  \
    t->field = (type)v;
    CHOICE("EMBER_CPU_KERNELS", CPU_KERNELS, cpu_kernels, ember_cpu_kernels)
    CHOICE("EMBER_CUDA_SYNC", SWITCHES, cuda_sync, ember_switch)
    CHOICE("EMBER_CUDA_ATTENTION", CUDA_ATTENTION, cuda_attention, ember_cuda_attention)
    CHOICE("EMBER_CUDA_GEMM", CUDA_GEMM, cuda_gemm, ember_cuda_gemm)
    CHOICE("EMBER_CUDA_PROFILE", SWITCHES, cuda_profile, ember_switch)
#undef CHOICE
    const char *chunk = getenv("EMBER_CUDA_FFN_CHUNK");
    long n;
    if (chunk && *chunk) {
        if (!parse_long(chunk, 0, INT32_MAX, &n))
            return ember_fail(EMBER_ERR_INVALID_ARGUMENT,
                              "EMBER_CUDA_FFN_CHUNK must be a token count (0: off), got '%s'", chunk);
        t->cuda_ffn_chunk = (int32_t)n;
    }
    return EMBER_OK;
}
