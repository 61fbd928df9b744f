/* The server's request handling for every route, without the network: the
 * body a stranger sends goes through api_parse (JSON, validation,
 * tokenization) and, when it would reach the model, through api_respond
 * with made-up vectors, exactly as the server runs them (src/server/api.c
 * is compiled into this target with the HTTP layer and the batcher
 * replaced by the two functions below). Every request is answered exactly
 * once, with a status the API documents and a JSON body. The input's first
 * byte picks the route; libmicrohttpd's own parsing is not fuzzed here. */
#include <jansson.h>
#include <stdarg.h>
#include <string.h>

#include "common/clock.h"
#include "fuzz_util.h"
#include "server/server_internal.h"

#ifndef EMBER_FUZZ_MODEL
#define EMBER_FUZZ_MODEL "tests/data/tiny-bert"
#endif

static server srv;
static float corpus[5 * 64];
static int replies, submitted;
static unsigned last_status;
static char *last_body;
static size_t last_len;

/* ---- the HTTP layer and the batcher, replaced --------------------------------------- */

void request_reply(request *r, unsigned status, char *body, size_t len, const char *content_type) {
    (void)r;
    (void)content_type;
    replies++;
    last_status = status;
    free(last_body);
    last_body = body;
    last_len = len;
}

void request_fail(request *r, fail_kind kind, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    const int openai = r->route == ROUTE_OPENAI;
    size_t len = 0;
    char *body = fail_body(kind, openai, msg, &len);
    request_reply(r, fail_status(kind, openai), body, len, "application/json");
}

void batcher_submit(server *s, request *r) {
    (void)s;
    submitted++;
    r->t_queued = r->t_first_batch = r->t_last_batch = clock_now();
}

/* ---- the target ------------------------------------------------------------------------------ */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    if (ember_model_load(EMBER_FUZZ_MODEL, NULL, &srv.model) != EMBER_OK) {
        fprintf(stderr, "fuzz_request: %s\n", ember_last_error());
        abort();
    }
    ember_model_get_info(srv.model, &srv.info);
    /* (not ember_server_default_config: that would link the real server in) */
    srv.cfg.max_concurrent_requests = 512;
    srv.cfg.payload_limit = 2000000;
    srv.cfg.max_client_batch_size = 8;
    srv.cfg.served_model_name = "fuzz";
    srv.dim = srv.info.dim;
    srv.max_input_length = srv.info.max_length;
    srv.max_batch_tokens = srv.info.max_batch_tokens;
    metrics_init(&srv.metrics, srv.max_input_length);
    /* POST /search over five made-up vectors, with their lines */
    for (int i = 0; i < 5 * srv.dim; i++) corpus[i] = (float)((i * 37) % 11) - 5.0f;
    ember_index_wrap(corpus, 5, srv.dim, &srv.index);
    ember_index_get_info(srv.index, &srv.index_info);
    for (int i = 0; i < 5; i++) str_list_add(&srv.corpus, "a line", 6);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const route_id routes[] = {ROUTE_EMBED, ROUTE_EMBED_ALL, ROUTE_TOKENIZE, ROUTE_OPENAI, ROUTE_SEARCH};
    request *r = calloc(1, sizeof *r);
    r->srv = &srv;
    r->route = routes[data[0] % 5];
    r->fd = -1;
    r->t_start = clock_now();
    r->len = size - 1;
    r->body = malloc(r->len ? r->len : 1);
    memcpy(r->body, data + 1, r->len);
    replies = submitted = 0;
    api_parse(r);
    if (submitted) {
        FUZZ_CHECK(replies == 0, "a request was answered and also queued");
        /* the model's part, made up: any finite numbers do */
        if (r->pooled)
            for (size_t i = 0; i < (size_t)r->n * srv.dim; i++) r->pooled[i] = (float)(i % 7) - 3.0f;
        if (r->hidden)
            for (size_t i = 0; i < (size_t)r->n_tokens * srv.dim; i++) r->hidden[i] = (float)(i % 5) * 0.25f;
        api_respond(r);
    }
    FUZZ_CHECK(replies == 1, "%d answers to one request", replies);
    FUZZ_CHECK(last_status == 200 || (last_status >= 400 && last_status < 600), "status %u", last_status);
    json_error_t err;
    json_t *j = json_loadb(last_body, last_len, 0, &err);
    FUZZ_CHECK(j != NULL, "the answer (status %u) is not JSON: %s: %.200s", last_status, err.text, last_body);
    json_decref(j);
    free(r->body);
    free(r->off);
    free(r->ids);
    free(r->type_ids);
    free(r->pooled);
    free(r->hidden);
    free(r->entries);
    free(r);
    return 0;
}
