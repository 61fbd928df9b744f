#include "errors.h"

#include <string.h>

#include "strbuf.h"

typedef struct {
    unsigned tei_status, openai_status;
    const char *tei_type, *openai_type, *openai_code;
    const char *metric;
} fail_shape;

/* TEI's status per error type (validation is 422 where TEI itself answers
 * 413), OpenAI's status, type and code, and the metric's label. */
static const fail_shape fail_shapes[FAIL_KINDS] = {
    [FAIL_VALIDATION] = {422, 400, "validation", "invalid_request_error", NULL, "validation"},
    [FAIL_TOKENIZER] = {422, 400, "tokenizer", "invalid_request_error", NULL, "tokenizer"},
    [FAIL_OVERLOADED] = {429, 429, "overloaded", "rate_limit_error", "rate_limit_exceeded", "overloaded"},
    [FAIL_BACKEND] = {424, 500, "backend", "server_error", NULL, "backend"},
    [FAIL_EMPTY] = {400, 400, "empty", "invalid_request_error", NULL, "empty"},
    [FAIL_UNHEALTHY] = {503, 503, "unhealthy", "service_unavailable_error", NULL, "unhealthy"},
    [FAIL_PAYLOAD_TOO_LARGE] = {413, 413, "validation", "invalid_request_error", "payload_too_large",
                                "payload_too_large"},
    [FAIL_BATCH_SIZE] = {422, 400, "validation", "invalid_request_error", NULL, "batch_size"},
    /* no one hears it: nginx's code */
    [FAIL_DISCONNECTED] = {499, 499, "validation", "invalid_request_error", NULL, "disconnected"},
    [FAIL_NOT_FOUND] = {404, 404, "validation", "not_found_error", NULL, "not_found"},
    [FAIL_UNAUTHORIZED] = {401, 401, "validation", "authentication_error", "invalid_api_key", "unauthorized"},
    [FAIL_BAD_REQUEST] = {400, 400, "validation", "invalid_request_error", NULL, "bad_request"},
};

unsigned fail_status(fail_kind kind, int openai) {
    return openai ? fail_shapes[kind].openai_status : fail_shapes[kind].tei_status;
}

const char *fail_metric_name(fail_kind kind) { return fail_shapes[kind].metric; }

char *fail_body(fail_kind kind, int openai, const char *msg, size_t *len) {
    strbuf b;
    sb_init(&b, 128 + strlen(msg));
    const fail_shape *f = &fail_shapes[kind];
    if (openai) {
        sb_puts(&b, "{\"error\":{\"message\":");
        sb_json_string(&b, msg, strlen(msg));
        sb_puts(&b, ",\"type\":\"");
        sb_puts(&b, f->openai_type);
        sb_puts(&b, "\",\"param\":null,\"code\":");
        if (f->openai_code) {
            sb_putc(&b, '"');
            sb_puts(&b, f->openai_code);
            sb_putc(&b, '"');
        } else {
            sb_puts(&b, "null");
        }
        sb_puts(&b, "}}");
    } else {
        sb_puts(&b, "{\"error\":");
        sb_json_string(&b, msg, strlen(msg));
        sb_puts(&b, ",\"error_type\":\"");
        sb_puts(&b, f->tei_type);
        sb_puts(&b, "\"}");
    }
    return sb_take(&b, len);
}
