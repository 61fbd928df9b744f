/*
 * The model thread: the only thread that runs the model. Inputs of every
 * request wait in one FIFO; each round takes inputs from its head until the
 * token budget (--max-batch-tokens) or --max-batch-requests is reached and
 * runs them as one padding-free batch — so the batch is as large as the load
 * allows, with no timer: at low load a lone input runs at once, and while a
 * batch runs the next one gathers.
 *
 * One refinement: while inputs are still streaming in (the clients of a
 * batch just answered send their next requests within a few milliseconds
 * of each other), the round waits until the queue stops growing for a
 * moment — 5% of the last batch's time, between 50 us and 2 ms — so that a
 * closed loop of many clients runs as one full batch per round instead of
 * alternating half batches whose answers and requests compete with the
 * forward pass for the cores. The wait ends early when the budget is full,
 * and never exceeds half the last batch's time.
 *
 * A client that hung up is noticed when its inputs reach the head of the
 * queue (libmicrohttpd does not watch suspended connections, so the socket
 * is polled here): its inputs are dropped instead of computed.
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/clock.h"
#include "server_internal.h"

/* Has the peer closed (or reset) the connection? A request that is waiting
 * for its answer sends nothing more, so readable data can only be a
 * pipelined next request: peek to tell it from the end of the stream. */
static int client_gone(int fd) {
    if (fd < 0) return 0;
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
    if (poll(&p, 1, 0) <= 0) return 0;
    if (p.revents & (POLLHUP | POLLERR | POLLNVAL | POLLRDHUP)) return 1;
    if (p.revents & POLLIN) {
        char c;
        ssize_t k = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
        return k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
    }
    return 0;
}

/* Count an input of r as done; hand r to a worker to answer when it was the last. */
static void input_done(server *s, request *r) {
    if (atomic_fetch_sub(&r->pending, 1) == 1) workers_submit(s, r, JOB_RESPOND);
}

static void run_batch(server *s, int32_t n, int64_t tokens) {
    double t0 = clock_now();
    metrics_observe(&s->metrics, HIST_BATCH_SIZE, (double)n);
    metrics_observe(&s->metrics, HIST_BATCH_TOKENS, (double)tokens);
    for (int32_t i = 0; i < n; i++)
        if (s->taken[i]->req->t_first_batch == 0) s->taken[i]->req->t_first_batch = t0;
    const int32_t D = s->dim, H = s->info.hidden_size;
    /* one forward pass per output kind present (usually one) */
    for (int kind = 0; kind < OUT_KINDS; kind++) {
        int32_t k = 0;
        for (int32_t i = 0; i < n; i++) {
            const queue_entry *e = s->taken[i];
            const request *r = e->req;
            if ((int)r->out != kind) continue;
            int64_t a = r->off[e->index], b = r->off[e->index + 1];
            s->seqs[k++] = (ember_sequence){r->ids + a, r->type_ids + a, (int32_t)(b - a),
                                            r->skips ? r->skips[e->index] : 0};
        }
        if (!k) continue;
        ember_encode_params p = ember_encode_default_params();
        p.normalize = kind == OUT_POOLED_NORM ? EMBER_NORMALIZE_ON : EMBER_NORMALIZE_OFF;
        double tk = clock_now();
        ember_status st = ember_encode_sequences(s->model, s->seqs, k, &p, kind == OUT_HIDDEN ? NULL : s->pooled_buf,
                                                 kind == OUT_HIDDEN ? s->hidden_buf : NULL);
        metrics_observe(&s->metrics, HIST_BATCH_INFERENCE_DURATION, clock_now() - tk);
        metrics_batch(&s->metrics, st == EMBER_OK);
        atomic_store(&s->unhealthy, st != EMBER_OK);
        const char *err = st == EMBER_OK ? NULL : ember_last_error();
        int64_t row = 0;
        int32_t j = 0;
        for (int32_t i = 0; i < n; i++) {
            const queue_entry *e = s->taken[i];
            request *r = e->req;
            if ((int)r->out != kind) continue;
            int64_t a = r->off[e->index], len = r->off[e->index + 1] - a;
            if (err) {
                if (!atomic_load(&r->failed)) {
                    snprintf(r->fail_msg, sizeof r->fail_msg, "inference failed: %s", err);
                    atomic_store(&r->failed, 1);
                }
            } else if (kind == OUT_HIDDEN) {
                memcpy(r->hidden + a * H, s->hidden_buf + row * H, (size_t)(len * H) * sizeof(float));
            } else {
                memcpy(r->pooled + (int64_t)e->index * D, s->pooled_buf + (int64_t)j * D, (size_t)D * sizeof(float));
            }
            row += len;
            j++;
        }
    }
    double t1 = clock_now();
    s->last_batch_s = t1 - t0;
    for (int32_t i = 0; i < n; i++) {
        request *r = s->taken[i]->req;
        r->t_last_batch = t1;
        input_done(s, r);
    }
}

/* With qlock held and the queue not empty: wait while inputs keep coming
 * and the batch is not full (see the top of the file). */
static void wait_for_stragglers(server *s) {
    double quiet = 0.05 * s->last_batch_s;
    quiet = quiet < 50e-6 ? 50e-6 : quiet > 2e-3 ? 2e-3 : quiet;
    double t0 = clock_now(), limit = 0.5 * s->last_batch_s;
    while (!s->qstop && !s->qabort && s->qtokens < s->max_batch_tokens && s->qsize < s->max_batch_inputs &&
           clock_now() - t0 < limit) {
        int64_t before = s->qsize;
        struct timespec until = clock_deadline(quiet);
        while (s->qsize == before && !s->qstop && !s->qabort &&
               pthread_cond_timedwait(&s->qcv, &s->qlock, &until) == 0) {
        }
        if (s->qsize == before) return; /* quiet for a while: go */
    }
}

static void *model_main(void *arg) {
    server *s = arg;
    unsigned round = 0; /* wraps after 2^32 rounds: only compared for equality */
    for (;;) {
        pthread_mutex_lock(&s->qlock);
        while (!s->qhead && !s->qstop) pthread_cond_wait(&s->qcv, &s->qlock);
        if (!s->qhead) {
            pthread_mutex_unlock(&s->qlock);
            return NULL;
        }
        wait_for_stragglers(s);
        round++;
        int32_t n = 0;
        int64_t tokens = 0;
        request *dropped = NULL; /* requests with an input dropped this round (linked by next_job) */
        while (s->qhead) {
            queue_entry *e = s->qhead;
            request *r = e->req;
            if (s->qabort && !atomic_load(&r->gone)) atomic_store(&r->gone, 2);
            if (!atomic_load(&r->gone) && r->checked_round != round) {
                r->checked_round = round;
                if (client_gone(r->fd)) atomic_store(&r->gone, 1);
            }
            int skip = atomic_load(&r->gone) || atomic_load(&r->failed);
            int64_t len = r->off[e->index + 1] - r->off[e->index];
            if (!skip && n > 0 && (tokens + len > s->max_batch_tokens || n == s->max_batch_inputs)) break;
            s->qhead = e->next;
            if (!s->qhead) s->qtail = NULL;
            s->qsize--;
            s->qtokens -= len;
            if (skip) {
                /* answered after the lock is let go, once per request */
                if (atomic_fetch_sub(&r->pending, 1) == 1) {
                    r->next_job = dropped;
                    dropped = r;
                }
                continue;
            }
            s->taken[n++] = e;
            tokens += len;
        }
        metrics_set_queue(&s->metrics, s->qsize, -1);
        pthread_mutex_unlock(&s->qlock);
        while (dropped) {
            request *r = dropped;
            dropped = r->next_job;
            workers_submit(s, r, JOB_RESPOND);
        }
        if (n) run_batch(s, n, tokens);
    }
}

void batcher_submit(server *s, request *r) {
    r->entries = calloc((size_t)r->n, sizeof *r->entries);
    if (!r->entries) {
        request_fail(r, FAIL_BACKEND, "out of memory queueing %d inputs", r->n);
        return;
    }
    for (int32_t i = 0; i < r->n; i++) {
        r->entries[i].req = r;
        r->entries[i].index = i;
        r->entries[i].next = i + 1 < r->n ? &r->entries[i + 1] : NULL;
    }
    atomic_store(&r->pending, r->n);
    r->t_queued = clock_now();
    pthread_mutex_lock(&s->qlock);
    if (s->qstop || s->qabort) {
        pthread_mutex_unlock(&s->qlock);
        request_fail(r, FAIL_UNHEALTHY, "the server is shutting down");
        return;
    }
    if (s->qtail) s->qtail->next = &r->entries[0];
    else s->qhead = &r->entries[0];
    s->qtail = &r->entries[r->n - 1];
    s->qsize += r->n;
    s->qtokens += r->n_tokens;
    metrics_set_queue(&s->metrics, s->qsize, -1);
    pthread_cond_signal(&s->qcv);
    pthread_mutex_unlock(&s->qlock);
}

int batcher_start(server *s) {
    pthread_mutex_init(&s->qlock, NULL);
    /* the waits are short and must not jump with the clock */
    if (clock_cond_init(&s->qcv) != 0) return 0;
    /* every input has at least one token */
    s->max_batch_inputs = s->cfg.max_batch_requests > 0 && s->cfg.max_batch_requests < s->max_batch_tokens
                              ? s->cfg.max_batch_requests
                              : s->max_batch_tokens;
    size_t N = (size_t)s->max_batch_inputs, D = (size_t)s->dim;
    s->seqs = malloc(N * sizeof *s->seqs);
    s->taken = malloc(N * sizeof *s->taken);
    s->pooled_buf = malloc(N * D * sizeof(float));
    s->hidden_buf = malloc((size_t)s->max_batch_tokens * (size_t)s->info.hidden_size * sizeof(float));
    if (!s->seqs || !s->taken || !s->pooled_buf || !s->hidden_buf) return 0;
    if (pthread_create(&s->model_thread, NULL, model_main, s) != 0) return 0;
    s->model_started = 1;
    return 1;
}

void batcher_abort(server *s) {
    pthread_mutex_lock(&s->qlock);
    s->qabort = 1;
    pthread_cond_signal(&s->qcv);
    pthread_mutex_unlock(&s->qlock);
}

/* Run what is queued, then end the model thread. */
void batcher_stop(server *s) {
    if (s->model_started) {
        pthread_mutex_lock(&s->qlock);
        s->qstop = 1;
        pthread_cond_signal(&s->qcv);
        pthread_mutex_unlock(&s->qlock);
        pthread_join(s->model_thread, NULL);
        s->model_started = 0;
    }
    free(s->seqs);
    free(s->taken);
    free(s->pooled_buf);
    free(s->hidden_buf);
    s->seqs = NULL;
    s->taken = NULL;
    s->pooled_buf = s->hidden_buf = NULL;
}
