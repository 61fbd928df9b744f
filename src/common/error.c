#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char last_error[1024];
static _Thread_local ember_status last_status;
static ember_log_fn log_fn;
static void *log_user;

ember_status ember_fail(ember_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    last_status = status;
    return status;
}

ember_status ember_error_status(void) { return last_status; }

void ember_error_prefix(const char *fmt, ...) {
    char prefix[512], old[sizeof last_error];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, last_error, sizeof old);
    snprintf(last_error, sizeof last_error, "%s: %s", prefix, old);
}

void ember_clear_error(void) {
    last_error[0] = '\0';
    last_status = EMBER_OK;
}

const char *ember_last_error(void) { return last_error; }

const char *ember_status_str(ember_status status) {
    switch (status) {
    case EMBER_OK: return "ok";
    case EMBER_ERR_INVALID_ARGUMENT: return "invalid argument";
    case EMBER_ERR_IO: return "i/o error";
    case EMBER_ERR_FORMAT: return "format error";
    case EMBER_ERR_UNSUPPORTED: return "unsupported";
    case EMBER_ERR_NO_DEVICE: return "no CUDA device";
    case EMBER_ERR_OUT_OF_MEMORY: return "out of memory";
    case EMBER_ERR_BUFFER_TOO_SMALL: return "buffer too small";
    case EMBER_ERR_BACKEND: return "backend error";
    case EMBER_ERR_CANCELLED: return "cancelled";
    }
    return "unknown status";
}

void ember_log_set(ember_log_fn fn, void *user) {
    log_fn = fn;
    log_user = user;
}

void ember_log(ember_log_level level, const char *fmt, ...) {
    if (!log_fn) return;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    log_fn(level, msg, log_user);
}
