/* Errors and logging inside the library: a status plus a message naming the
 * input and the problem, kept per thread for ember_last_error(). */
#ifndef EMBER_COMMON_ERROR_H
#define EMBER_COMMON_ERROR_H

#include "ember.h"

#if defined(__GNUC__)
#define EMBER_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define EMBER_PRINTF(a, b)
#endif

/* Record the message for ember_last_error() and return status. */
ember_status ember_fail(ember_status status, const char *fmt, ...) EMBER_PRINTF(2, 3);
/* Prefix the current thread's message with "prefix: ". */
void ember_error_prefix(const char *fmt, ...) EMBER_PRINTF(1, 2);
void ember_clear_error(void);
/* The status of the calling thread's last ember_fail (EMBER_OK if none):
 * for a layer that passes on a failure recorded below it. */
ember_status ember_error_status(void);

void ember_log(ember_log_level level, const char *fmt, ...) EMBER_PRINTF(2, 3);

#endif
