/* Why a request failed, and how each API says so: the TEI error types plus
 * what TEI leaves to its HTTP layer, with TEI's and OpenAI's statuses,
 * types and codes, and the label the failure is counted under in /metrics. */
#ifndef EMBER_SERVER_ERRORS_H
#define EMBER_SERVER_ERRORS_H

#include <stddef.h>

typedef enum {
    FAIL_VALIDATION = 0,
    FAIL_TOKENIZER,
    FAIL_OVERLOADED,
    FAIL_BACKEND,
    FAIL_EMPTY,
    FAIL_UNHEALTHY,
    FAIL_PAYLOAD_TOO_LARGE,
    FAIL_BATCH_SIZE,   /* more inputs than --max-client-batch-size (a validation error) */
    FAIL_DISCONNECTED, /* the client left before its answer was ready */
    FAIL_NOT_FOUND,
    FAIL_UNAUTHORIZED,
    FAIL_BAD_REQUEST, /* the request's framing: Content-Length repeated, or with Transfer-Encoding */
    FAIL_KINDS
} fail_kind;

/* The HTTP status of a failure in the API's shape (openai: the OpenAI route). */
unsigned fail_status(fail_kind kind, int openai);
/* The JSON error body (malloc'd, *len bytes): TEI's {"error", "error_type"}
 * or OpenAI's {"error": {"message", "type", "param", "code"}}. */
char *fail_body(fail_kind kind, int openai, const char *msg, size_t *len);
/* te_request_failure's label: "validation", "tokenizer", ... */
const char *fail_metric_name(fail_kind kind);

#endif
