/*
 * The server's moving parts and the request that travels between them:
 *
 *   HTTP thread (libmicrohttpd)  reads the body, suspends the connection
 *        │ job: parse
 *        ▼
 *   worker threads               parse JSON, validate, tokenize
 *        │ one queue entry per input
 *        ▼
 *   model thread (owns the model) merges entries of many requests into
 *        │                        batches by token budget, runs them
 *        │ job: respond (when a request's last input is done)
 *        ▼
 *   worker threads               write the JSON answer, queue it, resume
 *
 * A request belongs to one stage at a time; after the stage that answers it
 * resumes its connection it belongs to the HTTP thread again, which frees it
 * when libmicrohttpd reports the request completed.
 */
#ifndef EMBER_SERVER_INTERNAL_H
#define EMBER_SERVER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "ember.h"
#include "errors.h"
#include "metrics.h"
#include "common/vec.h"
#include "strbuf.h"

struct MHD_Connection;
struct MHD_Daemon;

typedef enum {
    ROUTE_EMBED = 0,  /* POST /embed (also / and /invocations) */
    ROUTE_EMBED_ALL,  /* POST /embed_all */
    ROUTE_TOKENIZE,   /* POST /tokenize */
    ROUTE_OPENAI,     /* POST /v1/embeddings (also /embeddings) */
    ROUTE_SEARCH,     /* POST /search (with stored vectors) */
    ROUTE_SIMILARITY, /* POST /similarity (also / and /invocations with its body) */
    ROUTE_RERANK,     /* POST /rerank (also / and /invocations for a reranker) */
    ROUTE_PREDICT,    /* POST /predict (also / and /invocations for a classifier) */
    ROUTE_INFO,       /* GET /info */
    ROUTE_HEALTH,     /* GET /health (also / and /ping) */
    ROUTE_METRICS,    /* GET /metrics */
    ROUTE_NONE
} route_id;

/* What the model computes for a request; a batch runs one forward pass per
 * kind present in it. */
typedef enum {
    OUT_POOLED_NORM = 0, /* pooled, L2-normalised by the library */
    OUT_POOLED_RAW,      /* pooled as is (normalize=false, or cut to `dimensions` first) */
    OUT_HIDDEN,          /* every token's last hidden state */
    OUT_KINDS
} out_kind;

typedef enum { JOB_PARSE, JOB_RESPOND } job_kind;

struct request;
typedef struct queue_entry {
    struct queue_entry *next;
    struct request *req;
    int32_t index; /* the input */
} queue_entry;

typedef struct request {
    struct ember_server *srv;
    struct MHD_Connection *conn;
    int fd; /* the client's socket, polled for a hang-up while queued */
    route_id route;
    int at_root;     /* POSTed to / or /invocations: the body's shape picks the route */
    int admitted;    /* counted in server.in_flight */
    int in_pipeline; /* the connection is suspended and a stage owns the request */
    int answered;
    double t_start, t_queued, t_first_batch, t_last_batch, tok_seconds;

    /* the body */
    char *body;
    size_t len, cap;
    size_t dropped; /* bytes of a chunked body over the payload limit, not kept */

    /* the parsed request */
    int batch; /* `inputs` was a list (TEI's method="batch") */
    int normalize, truncate, truncate_left, add_special, base64;
    int32_t dimensions; /* 0: the model's */
    int32_t k;          /* /search: hits per query */
    int return_text;    /* /search: the corpus's lines too; /rerank: the texts */
    int raw_scores;     /* /rerank, /predict: the logits, not their sigmoid / softmax */
    str_list texts;     /* /rerank with return_text: the texts */
    out_kind out;
    job_kind job;
    struct request *next_job;

    /* inputs, tokenized: input i is ids[off[i] .. off[i+1]) */
    int32_t n;
    int64_t *off;
    int32_t *ids, *type_ids;
    int64_t n_tokens, n_chars;
    int32_t pool_skip;  /* the prompt's tokens left out of pooling (include_prompt false) */
    int32_t *skips;     /* (n) per input: pool_skip for a text, 0 for token ids (no prompt is
                           put before those); NULL when pool_skip is 0 */

    /* results, written by the model thread */
    float *pooled; /* (n, dim) */
    float *hidden; /* (n_tokens, dim) */
    queue_entry *entries;
    atomic_int pending; /* inputs not yet run (or dropped) */
    atomic_int gone;    /* the client hung up */
    atomic_int failed;  /* a forward pass failed: fail_msg says why */
    char fail_msg[256];
    unsigned checked_round; /* the batch round in which the socket was last polled */
} request;

typedef struct ember_server {
    ember_model *model;
    ember_model_info info;
    ember_server_config cfg; /* defaults filled in */
    int32_t dim, max_input_length;
    int32_t max_batch_tokens; /* the token budget of one forward pass: the model's workspace */
    struct MHD_Daemon *daemon;
    int listen_fd; /* after a drain, the listening socket to close (-1: none) */
    int32_t port;
    /* the HTTP thread's own */
    int64_t connections, connections_peak; /* open now; the most since memory was last given back */
    int trim_due;                          /* give freed memory back to the system at the next chance */
    metrics metrics;
    ember_index *index;     /* POST /search's vectors, or NULL */
    ember_index_info index_info;
    str_list corpus;        /* their lines (n == 0: none) */
    atomic_int in_flight;
    atomic_int draining;  /* SIGTERM came: refuse new requests */
    atomic_int unhealthy; /* the last forward pass failed */

    /* workers: a FIFO of requests (linked by next_job) */
    pthread_mutex_t wlock;
    pthread_cond_t wcv;
    request *jobs_head, *jobs_tail;
    int wstop;
    pthread_t *workers;
    int n_workers;

    /* the batch queue: a FIFO of inputs, owned by the model thread */
    pthread_mutex_t qlock;
    pthread_cond_t qcv;
    queue_entry *qhead, *qtail;
    int64_t qsize, qtokens;
    double last_batch_s; /* how long the last batch took: scales the wait for stragglers */
    int qstop, qabort;
    pthread_t model_thread;
    int model_started;
    ember_sequence *seqs;  /* (max inputs per batch) */
    queue_entry **taken;   /* (max inputs per batch) */
    float *pooled_buf;     /* (max inputs per batch, dim) */
    float *hidden_buf;     /* (max_batch_tokens, dim) */
    int32_t max_batch_inputs;
} server;

/* http.c */
/* Send the answer (body malloc'd, taken over; NULL for none) and, when a
 * pipeline stage owns the request, resume its connection: after this the
 * caller must not touch r. */
void request_reply(request *r, unsigned status, char *body, size_t len, const char *content_type);
/* Fail r with an error of `kind` in its API's shape (TEI or OpenAI). */
void request_fail(request *r, fail_kind kind, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* 1 when given (given_len bytes) is the secret, in a time that depends only
 * on given_len (--api-key). */
int secret_equal(const char *given, size_t given_len, const char *secret, size_t secret_len);
/* api.c: the work of the worker threads */
void api_parse(request *r);
void api_respond(request *r);
/* GET /info */
char *api_info(const server *s, size_t *len);

/* workers.c */
int workers_start(server *s);
void workers_submit(server *s, request *r, job_kind job);
void workers_stop(server *s);

/* batcher.c */
int batcher_start(server *s);
/* Queue every input of r (tokenized, results allocated). */
void batcher_submit(server *s, request *r);
/* Drop what is queued and answer it (forced shutdown). */
void batcher_abort(server *s);
void batcher_stop(server *s);

#endif
