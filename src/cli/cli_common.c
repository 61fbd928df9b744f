/* What every subcommand shares: the model options, number parsing, errors. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

static ember_log_level log_min = EMBER_LOG_WARN;

static void log_to_stderr(ember_log_level level, const char *msg, void *user) {
    (void)user;
    if (level < log_min) return;
    static const char *names[] = {"debug", "info", "warning", "error"};
    fprintf(stderr, "ember: %s: %s\n", names[level], msg);
}

void model_opts_init(model_opts *o) {
    memset(o, 0, sizeof *o);
    o->params = ember_model_default_params();
    const char *env = getenv("EMBER_MODEL");
    o->model_dir = env && *env ? env : EMBER_DEFAULT_MODEL;
}

int parse_int(const char *s, const char *what, long lo, long hi, int32_t *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "ember: error: %s must be an integer in [%ld, %ld], got '%s'\n", what, lo, hi, s);
        return 0;
    }
    *out = (int32_t)v;
    return 1;
}

int model_opts_parse(model_opts *o, int id, const char *arg) {
    switch (id) {
    case 'm':
    case 1000: o->model_dir = arg; return 1;
    case 1001:
        if (ember_device_parse(arg, &o->params.device, &o->params.device_index) != EMBER_OK) {
            fprintf(stderr, "ember: error: --device: %s\n", ember_last_error());
            return 0;
        }
        return 1;
    case 1002:
        if (ember_dtype_parse(arg, &o->params.dtype) != EMBER_OK) {
            fprintf(stderr, "ember: error: --dtype: %s\n", ember_last_error());
            return 0;
        }
        return 1;
    case 1003: return parse_int(arg, "--threads", 1, 4096, &o->params.n_threads);
    case 1004: return parse_int(arg, "--max-batch-tokens", 1, 1 << 24, &o->params.max_batch_tokens);
    case 1005: return parse_int(arg, "--max-length", 3, 1 << 20, &o->params.max_length);
    case 1006: o->verbose = 1; return 1;
    case 1007: o->params.revision = arg; return 1;
    }
    return 0;
}

ember_model *model_opts_load(const model_opts *o) {
    ember_model_params p = o->params;
    /* the debugging and tuning switches (ember.h: ember_tuning) */
    if (ember_tuning_from_env(&p.tuning) != EMBER_OK) {
        fprintf(stderr, "ember: error: %s\n", ember_last_error());
        return NULL;
    }
    /* the log: everything with --verbose; else warnings, and a profile asked for */
    log_min = o->verbose || p.tuning.cuda_profile == EMBER_SWITCH_ON ? EMBER_LOG_DEBUG : EMBER_LOG_WARN;
    ember_log_set(log_to_stderr, NULL);
    ember_model *m = NULL;
    if (!pull_if_missing(o->model_dir, p.revision)) return NULL;
    ember_status st = ember_model_load(o->model_dir, &p, &m);
    if (st != EMBER_OK) {
        fprintf(stderr, "ember: error: cannot load model: %s\n", ember_last_error());
        if (st == EMBER_ERR_IO && strcmp(o->model_dir, EMBER_DEFAULT_MODEL) == 0)
            fprintf(stderr, "ember: hint: fetch the default model with weights/fetch.sh\n");
        return NULL;
    }
    return m;
}

void die_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ember %s: error: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'ember %s --help')\n", cmd);
    va_end(ap);
    exit(2);
}

int cli_fail(void) {
    fprintf(stderr, "ember: error: %s\n", ember_last_error());
    return 1;
}
