/* Prometheus metrics with text-embeddings-inference's names (te_*), so
 * dashboards made for TEI read ember unchanged. */
#ifndef EMBER_SERVER_METRICS_H
#define EMBER_SERVER_METRICS_H

#include <stdint.h>

#include <pthread.h>

#include "errors.h"
#include "strbuf.h"

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

#define METRICS_MAX_BUCKETS 40

typedef struct {
    const char *name, *help;
    int n; /* buckets, +Inf not counted */
    double le[METRICS_MAX_BUCKETS];
    uint64_t count[METRICS_MAX_BUCKETS + 1]; /* per bucket (not cumulative); the last is +Inf */
    double sum;
} histogram;

/* One server's counters (each server its own: a process may run several). */
typedef struct {
    pthread_mutex_t lock;
    uint64_t requests[2], successes[2], failures[FAIL_KINDS];
    uint64_t batches, batches_ok;
    int64_t queue_size, in_flight, connections;
    histogram h[HIST_KINDS];
} metrics;

void metrics_init(metrics *m, int32_t max_input_length);
void metrics_free(metrics *m);
void metrics_request(metrics *m, int batch);      /* te_request_count{method} */
void metrics_success(metrics *m, int batch);      /* te_request_success{method} */
void metrics_failure(metrics *m, fail_kind kind); /* te_request_failure{err} */
void metrics_observe(metrics *m, hist_kind h, double v);
void metrics_batch(metrics *m, int ok);           /* te_batch_inference_count / _success */
void metrics_set_queue(metrics *m, int64_t sequences, int64_t requests_in_flight);
void metrics_set_connections(metrics *m, int64_t open);
/* The exposition text (Prometheus format 0.0.4). */
void metrics_render(metrics *m, strbuf *out);

#endif
