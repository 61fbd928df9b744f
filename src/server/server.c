/* The server's life (include/ember.h): start the stages, drain, stop. */
#include <microhttpd.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/error.h"
#include "http.h"
#include "server_internal.h"

ember_server_config ember_server_default_config(void) {
    ember_server_config c;
    memset(&c, 0, sizeof c);
    c.host = "127.0.0.1";
    c.port = 3000;
    c.max_concurrent_requests = 512;
    c.max_client_batch_size = 32;
    c.payload_limit = 2000000;
    c.idle_timeout = 60;
    return c;
}

static ember_status config_check(ember_server_config *c, const ember_model_info *info) {
    if (!c->host || !*c->host) c->host = "127.0.0.1";
    if (!c->served_model_name) c->served_model_name = info->name;
    if (c->tokenization_workers == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        c->tokenization_workers = n > 0 ? (int32_t)n : 1;
    }
    const char *bad = c->port < 0 || c->port > 65535                                  ? "port"
                      : c->max_concurrent_requests < 1                                ? "max_concurrent_requests"
                      : c->max_batch_requests < 0                                     ? "max_batch_requests"
                      : c->max_client_batch_size < 1                                  ? "max_client_batch_size"
                      : c->tokenization_workers < 1 || c->tokenization_workers > 1024 ? "tokenization_workers"
                      : c->payload_limit < 1                                          ? "payload_limit"
                      : c->idle_timeout < 0                                           ? "idle_timeout"
                                                                                      : NULL;
    if (bad) return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_server_start: %s is out of range", bad);
    if (c->corpus && !c->vectors)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "a corpus is for /search: give its vectors too (--vectors)");
    return EMBER_OK;
}

/* POST /search's vectors (and their lines): made by this model, pooled as
 * it pools (the queries are embedded by it, as requests are). */
static ember_status search_open(ember_server *s) {
    const ember_server_config *c = &s->cfg;
    ember_status st = ember_index_open(c->vectors, &s->index);
    if (st) return st;
    ember_index_info *ii = &s->index_info;
    ember_index_get_info(s->index, ii);
    if (ii->model_name && strcmp(ii->model_name, s->info.name) != 0)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "%s holds vectors of the model %s; the server runs %s",
                          c->vectors, ii->model_name, s->info.name);
    if (ii->dim > s->dim || (ii->model_dim && ii->model_dim != s->dim))
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "%s holds %d-dim vectors; the model's are %d-dim", c->vectors,
                          ii->dim, s->dim);
    if (ii->pooling != EMBER_POOLING_DEFAULT && ii->pooling != s->info.pooling)
        return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "%s was pooled with %s; the model pools with %s", c->vectors,
                          ember_pooling_str(ii->pooling), ember_pooling_str(s->info.pooling));
    if (c->corpus) {
        if ((st = str_list_read(&s->corpus, c->corpus, 0))) return st;
        if (s->corpus.n != ii->rows)
            return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "%s has %d lines but %s holds %lld vectors", c->corpus,
                              s->corpus.n, c->vectors, (long long)ii->rows);
    }
    return EMBER_OK;
}

/* Stop the stages and free; the daemon, when there is one, last (every
 * connection has been resumed by then, so libmicrohttpd may stop). */
static void server_free(ember_server *s) {
    batcher_stop(s);
    workers_stop(s);
    if (s->daemon) MHD_stop_daemon(s->daemon);
    ember_index_free(s->index);
    str_list_free(&s->corpus);
    metrics_free(&s->metrics);
    free(s);
}

ember_status ember_server_start(ember_model *model, const ember_server_config *config, ember_server **out) {
    if (!model || !out) return ember_fail(EMBER_ERR_INVALID_ARGUMENT, "ember_server_start: NULL argument");
    *out = NULL;
    ember_server *s = calloc(1, sizeof *s);
    if (!s) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    s->model = model;
    s->listen_fd = -1;
    ember_model_get_info(model, &s->info);
    s->cfg = config ? *config : ember_server_default_config();
    ember_status st = config_check(&s->cfg, &s->info);
    const char *prompt; /* a default prompt name the model lacks fails here, not on every request */
    if (!st) st = ember_resolve_prompt(model, s->cfg.default_prompt_name, s->cfg.default_prompt, &prompt, NULL);
    if (st) {
        free(s);
        return st;
    }
    s->dim = s->info.dim;
    s->max_input_length = s->info.max_length;
    /* the batch budget is the model's workspace, so the library never
     * splits a batch the server made */
    s->max_batch_tokens = s->info.max_batch_tokens;
    metrics_init(&s->metrics, s->max_input_length);
    if (s->cfg.vectors && (st = search_open(s))) {
        server_free(s);
        return st;
    }

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", s->cfg.port);
    int gai = getaddrinfo(s->cfg.host, port, &hints, &ai);
    if (gai != 0) {
        st = ember_fail(EMBER_ERR_INVALID_ARGUMENT, "cannot resolve the host '%s': %s", s->cfg.host,
                        gai_strerror(gai));
    } else if (!workers_start(s) || !batcher_start(s)) {
        st = ember_fail(EMBER_ERR_OUT_OF_MEMORY, "cannot start the server's threads");
    } else if (!(s->daemon = http_start(s, ai->ai_addr, ai->ai_family == AF_INET6))) {
        st = ember_fail(EMBER_ERR_IO, "cannot listen on %s:%d (is the port in use?)", s->cfg.host, s->cfg.port);
    }
    if (ai) freeaddrinfo(ai);
    if (st) {
        server_free(s);
        return st;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    s->port = di ? (int32_t)di->port : s->cfg.port;
    ember_log(EMBER_LOG_INFO, "server listening on %s port %d", s->cfg.host, s->port);
    *out = s;
    return EMBER_OK;
}

int32_t ember_server_port(const ember_server *s) { return s ? s->port : -1; }

int32_t ember_server_in_flight(const ember_server *s) { return s ? atomic_load(&s->in_flight) : 0; }

void ember_server_drain(ember_server *s) {
    if (!s || atomic_exchange(&s->draining, 1)) return;
    /* no new connections; the listening socket closes with the daemon */
    s->listen_fd = MHD_quiesce_daemon(s->daemon);
}

void ember_server_stop(ember_server *s) {
    if (!s) return;
    ember_server_drain(s);
    if (atomic_load(&s->in_flight) > 0) {
        /* what is queued is answered 503, a batch running finishes; bodies
         * still arriving are cut off when the daemon stops */
        ember_log(EMBER_LOG_WARN, "server stopping with %d requests in flight", atomic_load(&s->in_flight));
        batcher_abort(s);
        double t0 = clock_now();
        while (atomic_load(&s->in_flight) > 0 && clock_now() - t0 < 10.0) usleep(20000);
    }
    MHD_socket listen_fd = s->listen_fd;
    server_free(s);
    if (listen_fd != MHD_INVALID_SOCKET) close(listen_fd);
}
