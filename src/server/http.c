/* The HTTP side, on libmicrohttpd: routing, reading bodies, admission,
 * handing requests to the pipeline and sending what it answers. Everything
 * here runs on libmicrohttpd's one polling thread, except request_reply and
 * request_fail, which the pipeline stages call too. */
#include <malloc.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
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
    size_t reply_len; /* of the answer sent */
} http_request;

/* A request whose body or answer was this large gives memory back after it. */
#define TRIM_AFTER_BYTES ((size_t)1 << 20)

/* Memory freed after a large request (parsed on a worker, answered from
 * another) or after many connections close sits in malloc's arenas, and
 * glibc hands it back to the system only from the top of a heap: an abusive
 * burst would leave the process that much larger. Given back here, on the
 * HTTP thread, after the request or the connections it came from are gone
 * (not on every request: a trim walks every arena). */
static void trim_if_due(server *s) {
    if (!s->trim_due) return;
    s->trim_due = 0;
#ifdef __GLIBC__
    malloc_trim(0);
#endif
}

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
        {"/similarity", ROUTE_SIMILARITY, ROUTE_NONE},
        {"/rerank", ROUTE_RERANK, ROUTE_NONE},
        {"/predict", ROUTE_PREDICT, ROUTE_NONE},
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

int secret_equal(const char *given, size_t given_len, const char *secret, size_t secret_len) {
    /* Every byte of what was given is read, against the secret's bytes in
     * turn, with no early exit: the time taken depends on the length the
     * client sent, not on where it differs nor on the secret's length. */
    volatile unsigned char diff = given_len != secret_len;
    for (size_t i = 0; i < given_len; i++) {
        unsigned char k = secret_len ? (unsigned char)secret[i % secret_len] : 0;
        diff |= (unsigned char)given[i] ^ k;
    }
    return diff == 0;
}

static int authorized(server *s, struct MHD_Connection *conn) {
    if (!s->cfg.api_key) return 1;
    const char *h = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
    if (!h || strncmp(h, "Bearer ", 7) != 0) return 0;
    return secret_equal(h + 7, strlen(h + 7), s->cfg.api_key, strlen(s->cfg.api_key));
}

static void http_request_free(http_request *h) {
    request *r = &h->r;
    free(r->body);
    free(r->off);
    free(r->skips);
    free(r->ids);
    free(r->type_ids);
    free(r->pooled);
    free(r->hidden);
    free(r->entries);
    str_list_free(&r->texts);
    free(h->rep.body);
    free(h);
}

/* Send the reply a request holds, on the HTTP thread. */
static enum MHD_Result flush_reply(server *s, http_request *h) {
    h->state = ST_ANSWERED;
    h->reply_len = h->rep.len;
    reply rep = h->rep;
    h->rep.body = NULL;
    return send_now(s, h->r.conn, rep.status, rep.body, rep.len, rep.content_type, &h->r, NULL);
}

static enum MHD_Result count_content_length(void *cls, enum MHD_ValueKind kind, const char *key,
                                            const char *value) {
    (void)kind;
    (void)value;
    if (strcasecmp(key, MHD_HTTP_HEADER_CONTENT_LENGTH) == 0) ++*(int *)cls;
    return MHD_YES;
}

/* The first call for a request: its headers are in. */
static enum MHD_Result begin(server *s, struct MHD_Connection *conn, const char *url, const char *method,
                             void **con_cls) {
    trim_if_due(s);
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
    r->at_root = strcmp(url, "/") == 0 || strcmp(url, "/invocations") == 0;
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
    /* Two Content-Lengths, or one beside Transfer-Encoding, frame the body in
     * two ways: a proxy in front may read it one way and libmicrohttpd the
     * other (request smuggling). Refused, and the connection closed, since
     * the body is not read. */
    int n_cl = 0;
    MHD_get_connection_values(conn, MHD_HEADER_KIND, count_content_length, &n_cl);
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    if (n_cl > 1 || (cl && te)) {
        request_fail(r, FAIL_BAD_REQUEST, "%s", n_cl > 1 ? "more than one Content-Length header"
                                                         : "both Content-Length and Transfer-Encoding headers");
        return flush_reply(s, h);
    }
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
        if (r->dropped || r->len + n > (size_t)s->cfg.payload_limit) {
            /* A chunked body (no Content-Length) over the limit. libmicrohttpd
             * (0.9.75) cannot answer in the middle of a body: the rest is
             * dropped as it comes and answered 413 at its end, but past
             * four more limits' worth the connection is closed unanswered,
             * so that an endless body ends. */
            r->dropped += n;
            return r->dropped / 4 > (size_t)s->cfg.payload_limit ? MHD_NO : MHD_YES;
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
    if (r->dropped) {
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
    /* the answer's buffer is freed after this: trimmed at the next request
     * or connection close */
    if (h->r.cap + h->r.dropped + h->reply_len >= TRIM_AFTER_BYTES) s->trim_due = 1;
    http_request_free(h);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code) {
    (void)conn;
    (void)socket_context;
    server *s = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        if (++s->connections > s->connections_peak) s->connections_peak = s->connections;
        return;
    }
    s->connections--;
    if (s->connections_peak >= 256 && s->connections < s->connections_peak / 2) {
        s->connections_peak = s->connections;
        s->trim_due = 1;
    }
    trim_if_due(s);
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
    /* Connections, idle or not, up to what the descriptor limit allows (a
     * few kept for the model's files and the threads' pipes), so that many
     * idle clients do not lock out the others; no fewer than the requests in
     * flight plus some keep-alive ones. Beyond it a new connection is closed
     * at once; idle ones are closed after --idle-timeout. */
    unsigned limit = (unsigned)s->cfg.max_concurrent_requests + 1024;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur > 256) {
        rlim_t fit = rl.rlim_cur == RLIM_INFINITY ? (rlim_t)(1u << 20) : rl.rlim_cur - 128;
        limit = fit > (rlim_t)(1u << 20) ? (1u << 20) : (unsigned)fit;
    }
    if (limit < 16) limit = 16;
    return MHD_start_daemon(flags, 0, NULL, NULL, on_request, s,
                            MHD_OPTION_EXTERNAL_LOGGER, log_mhd, NULL, /* first, to catch the others' messages */
                            MHD_OPTION_SOCK_ADDR, addr,
                            MHD_OPTION_NOTIFY_COMPLETED, on_completed, s,
                            MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
                            MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg.idle_timeout,
                            MHD_OPTION_CONNECTION_LIMIT, limit,
                            MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                            MHD_OPTION_END);
}
