#include "metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

static void hist_setup(histogram *h, const char *name, const char *help) {
    h->name = name;
    h->help = help;
}

/* TEI's buckets: durations 1.5e-5 s growing by 1.5x (35 of them), input
 * lengths and batch sizes in powers of two. */
void metrics_init(metrics *m, int32_t max_input_length) {
    memset(m, 0, sizeof *m);
    pthread_mutex_init(&m->lock, NULL);
    metrics *const M = m;
    hist_setup(&M->h[HIST_REQUEST_DURATION], "te_request_duration", "Request duration in seconds");
    hist_setup(&M->h[HIST_TOKENIZATION_DURATION], "te_request_tokenization_duration",
               "Time spent tokenizing a request, seconds");
    hist_setup(&M->h[HIST_QUEUE_DURATION], "te_request_queue_duration",
               "Time a request waited for its first batch, seconds");
    hist_setup(&M->h[HIST_INFERENCE_DURATION], "te_request_inference_duration",
               "Time from a request's first batch to its last, seconds");
    hist_setup(&M->h[HIST_INPUT_LENGTH], "te_request_input_length", "Tokens per input");
    hist_setup(&M->h[HIST_BATCH_SIZE], "te_batch_next_size", "Inputs per forward pass");
    hist_setup(&M->h[HIST_BATCH_TOKENS], "te_batch_next_tokens", "Tokens per forward pass");
    hist_setup(&M->h[HIST_BATCH_INFERENCE_DURATION], "te_batch_inference_duration",
               "Duration of one forward pass, seconds");
    hist_kind durations[] = {HIST_REQUEST_DURATION, HIST_TOKENIZATION_DURATION, HIST_QUEUE_DURATION,
                             HIST_INFERENCE_DURATION, HIST_BATCH_INFERENCE_DURATION};
    for (size_t i = 0; i < sizeof durations / sizeof durations[0]; i++) {
        histogram *h = &M->h[durations[i]];
        double v = 0.00001;
        h->n = 35;
        for (int k = 0; k < h->n; k++) h->le[k] = (v *= 1.5);
    }
    histogram *h = &M->h[HIST_INPUT_LENGTH];
    h->n = 0;
    for (int k = 0; k < 20 && (1 << k) <= max_input_length; k++) h->le[h->n++] = (double)(1 << k);
    h = &M->h[HIST_BATCH_SIZE];
    h->n = 13;
    for (int k = 0; k < h->n; k++) h->le[k] = (double)(1 << k);
    h = &M->h[HIST_BATCH_TOKENS];
    h->n = 21;
    for (int k = 0; k < h->n; k++) h->le[k] = (double)(1 << k);
}

void metrics_free(metrics *m) { pthread_mutex_destroy(&m->lock); }

void metrics_request(metrics *M, int batch) {
    pthread_mutex_lock(&M->lock);
    M->requests[batch != 0]++;
    pthread_mutex_unlock(&M->lock);
}

void metrics_success(metrics *M, int batch) {
    pthread_mutex_lock(&M->lock);
    M->successes[batch != 0]++;
    pthread_mutex_unlock(&M->lock);
}

void metrics_failure(metrics *M, fail_kind kind) {
    pthread_mutex_lock(&M->lock);
    M->failures[kind]++;
    pthread_mutex_unlock(&M->lock);
}

void metrics_observe(metrics *M, hist_kind k, double v) {
    histogram *h = &M->h[k];
    pthread_mutex_lock(&M->lock);
    int i = 0;
    while (i < h->n && v > h->le[i]) i++;
    h->count[i]++;
    h->sum += v;
    pthread_mutex_unlock(&M->lock);
}

void metrics_batch(metrics *M, int ok) {
    pthread_mutex_lock(&M->lock);
    M->batches++;
    M->batches_ok += ok != 0;
    pthread_mutex_unlock(&M->lock);
}

void metrics_set_queue(metrics *M, int64_t sequences, int64_t in_flight) {
    pthread_mutex_lock(&M->lock);
    if (sequences >= 0) M->queue_size = sequences;
    if (in_flight >= 0) M->in_flight = in_flight;
    pthread_mutex_unlock(&M->lock);
}

void metrics_set_connections(metrics *M, int64_t open) {
    pthread_mutex_lock(&M->lock);
    M->connections = open;
    pthread_mutex_unlock(&M->lock);
}

static void render_le(strbuf *o, double le) {
    char t[32];
    snprintf(t, sizeof t, "%.17g", le);
    sb_puts(o, t);
}

void metrics_render(metrics *M, strbuf *o) {
    static const char *const methods[2] = {"single", "batch"};
    pthread_mutex_lock(&M->lock);
    sb_puts(o, "# HELP te_request_count Requests received (with a parsed body)\n# TYPE te_request_count counter\n");
    for (int i = 0; i < 2; i++)
        sb_printf(o, "te_request_count{method=\"%s\"} %llu\n", methods[i], (unsigned long long)M->requests[i]);
    sb_puts(o, "# HELP te_request_success Requests answered with 200\n# TYPE te_request_success counter\n");
    for (int i = 0; i < 2; i++)
        sb_printf(o, "te_request_success{method=\"%s\"} %llu\n", methods[i], (unsigned long long)M->successes[i]);
    sb_puts(o, "# HELP te_request_failure Requests that failed, by error kind\n# TYPE te_request_failure counter\n");
    for (int i = 0; i < FAIL_KINDS; i++)
        sb_printf(o, "te_request_failure{err=\"%s\"} %llu\n", fail_metric_name((fail_kind)i), (unsigned long long)M->failures[i]);
    sb_puts(o, "# HELP te_batch_inference_count Forward passes run\n# TYPE te_batch_inference_count counter\n");
    sb_printf(o, "te_batch_inference_count %llu\n", (unsigned long long)M->batches);
    sb_puts(o, "# HELP te_batch_inference_success Forward passes that succeeded\n"
               "# TYPE te_batch_inference_success counter\n");
    sb_printf(o, "te_batch_inference_success %llu\n", (unsigned long long)M->batches_ok);
    sb_puts(o, "# HELP te_queue_size Inputs waiting for a batch\n# TYPE te_queue_size gauge\n");
    sb_printf(o, "te_queue_size %lld\n", (long long)M->queue_size);
    sb_puts(o, "# HELP ember_requests_in_flight Requests admitted and not yet answered\n"
               "# TYPE ember_requests_in_flight gauge\n");
    sb_printf(o, "ember_requests_in_flight %lld\n", (long long)M->in_flight);
    sb_puts(o, "# HELP ember_connections Open client connections\n# TYPE ember_connections gauge\n");
    sb_printf(o, "ember_connections %lld\n", (long long)M->connections);
    for (int k = 0; k < HIST_KINDS; k++) {
        const histogram *h = &M->h[k];
        sb_printf(o, "# HELP %s %s\n# TYPE %s histogram\n", h->name, h->help, h->name);
        uint64_t cum = 0;
        for (int i = 0; i < h->n; i++) {
            cum += h->count[i];
            sb_printf(o, "%s_bucket{le=\"", h->name);
            render_le(o, h->le[i]);
            sb_printf(o, "\"} %llu\n", (unsigned long long)cum);
        }
        cum += h->count[h->n];
        sb_printf(o, "%s_bucket{le=\"+Inf\"} %llu\n", h->name, (unsigned long long)cum);
        sb_printf(o, "%s_sum %.17g\n%s_count %llu\n", h->name, h->sum, h->name, (unsigned long long)cum);
    }
    pthread_mutex_unlock(&M->lock);
}
