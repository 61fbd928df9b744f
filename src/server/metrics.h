/* Prometheus metrics with text-embeddings-inference's names (te_*), so
 * dashboards made for TEI read ember unchanged. */
#ifndef EMBER_SERVER_METRICS_H
#define EMBER_SERVER_METRICS_H

#include <stdint.h>

#include "strbuf.h"

/* Why a request failed: the TEI error types, plus what TEI leaves to its
 * HTTP layer. Order matters: it indexes the tables in metrics.c and http.c. */
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
    FAIL_KINDS
} fail_kind;

typedef enum {
    HIST_REQUEST_DURATION = 0,      /* seconds, arrival to answer */
    HIST_TOKENIZATION_DURATION,     /* seconds spent tokenizing the request */
    HIST_QUEUE_DURATION,            /* seconds from queued to its first batch */
    HIST_INFERENCE_DURATION,        /* seconds from its first batch to its last */
    HIST_INPUT_LENGTH,              /* tokens per input */
    HIST_BATCH_SIZE,                /* inputs per forward pass */
    HIST_BATCH_TOKENS,              /* tokens per forward pass */
    HIST_BATCH_INFERENCE_DURATION,  /* seconds per forward pass */
    HIST_KINDS
} hist_kind;

void metrics_init(int32_t max_input_length);
void metrics_request(int batch);              /* te_request_count{method} */
void metrics_success(int batch);              /* te_request_success{method} */
void metrics_failure(fail_kind kind);         /* te_request_failure{err} */
void metrics_observe(hist_kind h, double v);
void metrics_batch(int ok);                   /* te_batch_inference_count / _success */
void metrics_set_queue(int64_t sequences, int64_t requests_in_flight);
void metrics_set_connections(int64_t open);
/* The exposition text (Prometheus format 0.0.4). */
void metrics_render(strbuf *out);

#endif
