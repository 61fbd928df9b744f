/* The HTTP side, on libmicrohttpd: routing, reading bodies, admission,
 * handing requests to the pipeline and sending what it answers. Everything
 * here runs on libmicrohttpd's one polling thread, except request_reply and
 * request_fail, which the pipeline stages call too. */
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/error.h"
#include "http.h"
#include "server_internal.h"

/* Where a request is. The pipeline may move IN_PIPELINE to REPLY_READY (and
 * resume the connection); everything else happens on the HTTP thread. */
enum { ST_RECEIVING = 0, ST_IN_PIPELINE, ST_REPLY_READY, ST_ANSWERED };

typedef struct {
    unsigned status;
    char *body;
    size_t len;
    const char *content_type;
} reply;

/* The reply waits in the request between the pipeline and the HTTP thread. */
typedef struct {
    request r;
    int state;
    reply rep;
} http_request;


/* ---- sending ------------------------------------------------------------------ */

static enum MHD_Result send_now(server *s, struct MHD_Connection *conn, unsigned status, char *body, size_t len,
                                const char *content_type, const request *timing, const char *allow) {
    struct MHD_Response *resp =
        body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)
             : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    if (content_type) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    if (atomic_load(&s->draining)) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    if (allow) MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    if (timing && status == 200 && timing->t_first_batch > 0) {
        /* TEI's timing headers, in milliseconds */
        const request *r = timing;
        char v[32];
        double total = clock_now() - r->t_start;
        MHD_add_response_header(resp, "x-compute-type", s->info.device == EMBER_DEVICE_CUDA ? "gpu" : "cpu");
        snprintf(v, sizeof v, "%.0f", total * 1e3);
        MHD_add_response_header(resp, "x-compute-time", v);
        MHD_add_response_header(resp, "x-total-time", v);
        snprintf(v, sizeof v, "%lld", (long long)r->n_chars);
        MHD_add_response_header(resp, "x-compute-characters", v);
        snprintf(v, sizeof v, "%lld", (long long)r->n_tokens);
        MHD_add_response_header(resp, "x-compute-tokens", v);
        snprintf(v, sizeof v, "%.0f", r->tok_seconds * 1e3);
        MHD_add_response_header(resp, "x-tokenization-time", v);
        snprintf(v, sizeof v, "%.0f", (r->t_first_batch - r->t_queued) * 1e3);
        MHD_add_response_header(resp, "x-queue-time", v);
        snprintf(v, sizeof v, "%.0f", (r->t_last_batch - r->t_first_batch) * 1e3);
        MHD_add_response_header(resp, "x-inference-time", v);
    }
    enum MHD_Result ret = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

void request_reply(request *r, unsigned status, char *body, size_t len, const char *content_type) {
    http_request *h = (http_request *)r;
    h->rep = (reply){status, body, len, content_type};
    if (h->state == ST_IN_PIPELINE) {
        struct MHD_Connection *conn = r->conn;
        h->state = ST_REPLY_READY;
        /* the HTTP thread takes over: it may free r before this returns */
        MHD_resume_connection(conn);
        return;
    }
    h->state = ST_REPLY_READY; /* sent by the handler that called us */
}

void request_fail(request *r, fail_kind kind, const char *fmt, ...) {
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    metrics_failure(&r->srv->metrics, kind);
    const int openai = r->route == ROUTE_OPENAI;
    size_t len = 0;
    char *body = fail_body(kind, openai, msg, &len);
    request_reply(r, fail_status(kind, openai), body, len, "application/json");
}

static enum MHD_Result fail_now(server *s, struct MHD_Connection *conn, route_id route, fail_kind kind,
                                const char *msg) {
    metrics_failure(&s->metrics, kind);
    const int openai = route == ROUTE_OPENAI;
    size_t len = 0;
    char *body = fail_body(kind, openai, msg, &len);
    return send_now(s, conn, fail_status(kind, openai), body, len, "application/json", NULL, NULL);
}

/* ---- routing ---------------------------------------------------------------------- */

static route_id route_of(const char *url, int post) {
    static const struct {
        const char *path;
        route_id post, get;
    } routes[] = {
        {"/embed", ROUTE_EMBED, ROUTE_NONE},
        {"/embed_all", ROUTE_EMBED_ALL, ROUTE_NONE},
        {"/tokenize", ROUTE_TOKENIZE, ROUTE_NONE},
        {"/v1/embeddings", ROUTE_OPENAI, ROUTE_NONE},
        {"/search", ROUTE_SEARCH, ROUTE_NONE},
        {"/embeddings", ROUTE_OPENAI, ROUTE_NONE},
        {"/invocations", ROUTE_EMBED, ROUTE_NONE}, /* SageMaker, as TEI */
        {"/", ROUTE_EMBED, ROUTE_HEALTH},
        {"/info", ROUTE_NONE, ROUTE_INFO},
        {"/health", ROUTE_NONE, ROUTE_HEALTH},
        {"/ping", ROUTE_NONE, ROUTE_HEALTH},
        {"/metrics", ROUTE_NONE, ROUTE_METRICS},
    };
    for (size_t i = 0; i < sizeof routes / sizeof routes[0]; i++)
        if (strcmp(url, routes[i].path) == 0) return post ? routes[i].post : routes[i].get;
    return ROUTE_NONE;
}

/* A GET request's con_cls points into this table (it needs no state). */
static const route_id get_routes[ROUTE_NONE + 1];
static int is_get(const void *p) {
    return (const route_id *)p >= get_routes && (const route_id *)p <= get_routes + ROUTE_NONE;
}

static int path_known(const char *url) { return route_of(url, 1) != ROUTE_NONE || route_of(url, 0) != ROUTE_NONE; }

static enum MHD_Result answer_get(server *s, struct MHD_Connection *conn, route_id route) {
    switch (route) {
    case ROUTE_HEALTH:
        if (atomic_load(&s->draining)) return fail_now(s, conn, ROUTE_HEALTH, FAIL_UNHEALTHY, "shutting down");
        if (atomic_load(&s->unhealthy)) return fail_now(s, conn, ROUTE_HEALTH, FAIL_UNHEALTHY, "unhealthy");
        return send_now(s, conn, 200, NULL, 0, NULL, NULL, NULL);
    case ROUTE_INFO: {
        size_t len = 0;
        char *body = api_info(s, &len);
        if (!body) return MHD_NO;
        return send_now(s, conn, 200, body, len, "application/json", NULL, NULL);
    }
    case ROUTE_METRICS: {
        /* the connection's daemon: s->daemon may not be stored yet */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_DAEMON);
        const union MHD_DaemonInfo *di =
            ci ? MHD_get_daemon_info(ci->daemon, MHD_DAEMON_INFO_CURRENT_CONNECTIONS) : NULL;
        if (di) metrics_set_connections(&s->metrics, di->num_connections);
        strbuf b;
        sb_init(&b, 16384);
        metrics_render(&s->metrics, &b);
        size_t len = 0;
        char *body = sb_take(&b, &len);
        if (!body) return MHD_NO;
        return send_now(s, conn, 200, body, len, "text/plain; version=0.0.4; charset=utf-8", NULL, NULL);
    }
    default: return MHD_NO;
    }
}

static int authorized(server *s, struct MHD_Connection *conn) {
    if (!s->cfg.api_key) return 1;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    return h && strncmp(h, "Bearer ", 7) == 0 && strcmp(h + 7, s->cfg.api_key) == 0;
}

static void http_request_free(http_request *h) {
    request *r = &h->r;
    free(r->body);
    free(r->off);
    free(r->ids);
    free(r->type_ids);
    free(r->pooled);
    free(r->hidden);
    free(r->entries);
    free(h->rep.body);
    free(h);
}

/* Send the reply a request holds, on the HTTP thread. */
static enum MHD_Result flush_reply(server *s, http_request *h) {
    h->state = ST_ANSWERED;
    reply rep = h->rep;
    h->rep.body = NULL;
    return send_now(s, h->r.conn, rep.status, rep.body, rep.len, rep.content_type, &h->r, NULL);
}

/* The first call for a request: its headers are in. */
static enum MHD_Result begin(server *s, struct MHD_Connection *conn, const char *url, const char *method,
                             void **con_cls) {
    int post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    int get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
    route_id route = (post || get) ? route_of(url, post) : ROUTE_NONE;
    if (route == ROUTE_NONE) {
        char msg[300];
        if (path_known(url)) {
            snprintf(msg, sizeof msg, "method %s is not allowed on %.200s", method, url);
            metrics_failure(&s->metrics, FAIL_NOT_FOUND);
            size_t len = 0;
            char *body = fail_body(FAIL_VALIDATION, 0, msg, &len);
            int has_post = route_of(url, 1) != ROUTE_NONE, has_get = route_of(url, 0) != ROUTE_NONE;
            return send_now(s, conn, 405, body, len, "application/json", NULL,
                            has_post && has_get ? "GET, HEAD, POST" : has_post ? "POST" : "GET, HEAD");
        }
        snprintf(msg, sizeof msg, "no route %.16s %.200s", method, url);
        return fail_now(s, conn, ROUTE_NONE, FAIL_NOT_FOUND, msg);
    }
    if (get) {
        /* answered on the next call, once the (empty) body is read: an
         * answer before that would close the connection */
        *con_cls = (void *)&get_routes[route];
        return MHD_YES;
    }

    http_request *h = calloc(1, sizeof *h);
    if (!h) return MHD_NO;
    request *r = &h->r;
    r->srv = s;
    r->conn = conn;
    r->route = route;
    r->fd = -1;
    r->t_start = clock_now();
    *con_cls = h;
    /* an answer before the body is read makes libmicrohttpd drop the body
     * and close the connection after the answer */
    if (atomic_load(&s->draining)) {
        request_fail(r, FAIL_UNHEALTHY, "the server is shutting down");
        return flush_reply(s, h);
    }
    if (!authorized(s, conn)) {
        request_fail(r, FAIL_UNAUTHORIZED, "missing or wrong API key (send 'Authorization: Bearer KEY')");
        return flush_reply(s, h);
    }
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (cl) {
        char *end;
        unsigned long long n = strtoull(cl, &end, 10);
        if (end != cl && n > (unsigned long long)s->cfg.payload_limit) {
            request_fail(r, FAIL_PAYLOAD_TOO_LARGE, "the body has %llu bytes, over the payload limit of %lld", n,
                         (long long)s->cfg.payload_limit);
            return flush_reply(s, h);
        }
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **con_cls) {
    (void)version;
    server *s = cls;
    if (!*con_cls) return begin(s, conn, url, method, con_cls);
    if (is_get(*con_cls)) {
        if (*upload_data_size) { /* a GET body means nothing here: skip it */
            *upload_data_size = 0;
            return MHD_YES;
        }
        return answer_get(s, conn, (route_id)((const route_id *)*con_cls - get_routes));
    }
    http_request *h = *con_cls;
    request *r = &h->r;
    if (h->state == ST_REPLY_READY) return flush_reply(s, h); /* resumed by the pipeline */
    if (h->state != ST_RECEIVING) return MHD_YES;
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (r->too_large || r->len + n > (size_t)s->cfg.payload_limit) {
            /* a chunked body (no Content-Length) over the limit: drop the
             * rest and answer 413 once it has all arrived */
            r->too_large = 1;
            return MHD_YES;
        }
        if (r->len + n + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 4096;
            while (cap < r->len + n + 1) cap *= 2;
            char *b = realloc(r->body, cap);
            if (!b) return MHD_NO;
            r->body = b;
            r->cap = cap;
        }
        memcpy(r->body + r->len, upload_data, n);
        r->len += n;
        return MHD_YES;
    }
    /* the whole body is in */
    if (r->too_large) {
        request_fail(r, FAIL_PAYLOAD_TOO_LARGE, "the body is over the payload limit of %lld bytes",
                     (long long)s->cfg.payload_limit);
        return flush_reply(s, h);
    }
    /* Admitted only now, as TEI takes its permit once the body is parsed: a
     * client that stalls or leaves mid-body (which libmicrohttpd notices
     * only at --idle-timeout) holds a connection, not a place in the queue. */
    if (atomic_fetch_add(&s->in_flight, 1) >= s->cfg.max_concurrent_requests) {
        atomic_fetch_sub(&s->in_flight, 1);
        request_fail(r, FAIL_OVERLOADED, "Model is overloaded: %d requests in flight (--max-concurrent-requests)",
                     s->cfg.max_concurrent_requests);
        return flush_reply(s, h);
    }
    r->admitted = 1;
    metrics_set_queue(&s->metrics, -1, atomic_load(&s->in_flight));
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    r->fd = ci ? ci->connect_fd : -1;
    h->state = ST_IN_PIPELINE;
    MHD_suspend_connection(conn);
    /* from here a pipeline stage owns r until it resumes the connection */
    workers_submit(s, r, JOB_PARSE);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)conn;
    (void)toe;
    server *s = cls;
    http_request *h = *con_cls;
    if (!h || is_get(h)) return;
    *con_cls = NULL;
    if (h->r.admitted) metrics_set_queue(&s->metrics, -1, atomic_fetch_sub(&s->in_flight, 1) - 1);
    http_request_free(h);
}

static void log_mhd(void *cls, const char *fmt, va_list ap) {
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    msg[strcspn(msg, "\n")] = '\0';
    ember_log(EMBER_LOG_WARN, "libmicrohttpd: %s", msg);
}

struct MHD_Daemon *http_start(server *s, const struct sockaddr *addr, int ipv6) {
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    /* poll(), not epoll: libmicrohttpd 0.9.75's edge-triggered epoll loop
     * misses a client's FIN in the middle of a body, leaving the connection
     * open until --idle-timeout; poll() sees it at once. */
    flags |= MHD_USE_POLL;
    if (ipv6) flags |= MHD_USE_IPv6;
    /* every in-flight request plus idle keep-alive connections */
    unsigned limit = (unsigned)s->cfg.max_concurrent_requests + 1024;
    return MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL, /* first, to catch the others' messages */
                            MHD_OPTION_SOCK_ADDR, addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg.idle_timeout,
                            MHD_OPTION_CONNECTION_LIMIT, limit,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                            MHD_OPTION_END);
}
