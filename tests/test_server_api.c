/* The server as a library (ember_server_*), in this process, over real
 * sockets on loopback: a free port chosen, TEI's /embed answered with the
 * vectors ember_encode gives, limits in the config obeyed, a drain refusing
 * new work, two servers side by side with their own metrics. The routes'
 * full behaviour is tested against the ember program by script_server.sh. */
#include <arpa/inet.h>
#include <jansson.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/server_internal.h"
#include "test_util.h"

/* One HTTP/1.1 request (Connection: close); the status, and the body in *body. */
static int http(int port, const char *method, const char *path, const char *json, char **body) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0, "connect to port %d", port);
    char head[512];
    size_t n = json ? strlen(json) : 0;
    int h = snprintf(head, sizeof head,
                     "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n",
                     method, path, n);
    cr_assert_eq(write(fd, head, (size_t)h), h);
    if (n) cr_assert_eq(write(fd, json, n), (ssize_t)n);
    size_t cap = 1 << 16, len = 0;
    char *buf = malloc(cap);
    for (ssize_t got; (got = read(fd, buf + len, cap - len - 1)) > 0;) {
        len += (size_t)got;
        if (len + 1 == cap) buf = realloc(buf, cap *= 2);
    }
    close(fd);
    buf[len] = '\0';
    int status = 0;
    cr_assert_eq(sscanf(buf, "HTTP/1.1 %d", &status), 1, "not an HTTP answer: %.200s", buf);
    char *sep = strstr(buf, "\r\n\r\n");
    *body = strdup(sep ? sep + 4 : "");
    free(buf);
    return status;
}

Test(server_api, embed_over_a_socket_then_drain_and_stop) {
    ember_model *m = load_model(TINY_DIR);
    ember_model_info info;
    ember_model_get_info(m, &info);
    ember_server_config cfg = ember_server_default_config();
    cfg.port = 0;
    cfg.max_client_batch_size = 2;
    cfg.tokenization_workers = 2;
    ember_server *srv = NULL;
    cr_assert_eq(ember_server_start(m, &cfg, &srv), EMBER_OK, "%s", ember_last_error());
    int port = ember_server_port(srv);
    cr_assert(port > 0 && port < 65536, "port %d", port);

    char *body;
    cr_assert_eq(http(port, "POST", "/embed", "{\"inputs\": [\"hello world\", \"time flies\"]}", &body), 200, "%s",
                 body);
    json_t *vecs = json_loads(body, 0, NULL);
    cr_assert(json_is_array(vecs) && json_array_size(vecs) == 2, "%s", body);
    const char *texts[] = {"hello world", "time flies"};
    float want[2 * 64];
    ember_encode_params ep = ember_encode_default_params();
    ep.normalize = EMBER_NORMALIZE_ON; /* TEI's /embed: normalize defaults to true */
    cr_assert_eq(ember_encode(m, texts, NULL, 2, &ep, want, NULL), EMBER_OK);
    for (size_t i = 0; i < 2; i++) {
        json_t *row = json_array_get(vecs, i);
        cr_assert_eq(json_array_size(row), (size_t)info.dim);
        for (int32_t d = 0; d < info.dim; d++) {
            double v = json_number_value(json_array_get(row, (size_t)d));
            cr_assert(fabs(v - want[i * (size_t)info.dim + (size_t)d]) < 1e-5, "row %zu dim %d: %g vs %g", i, d, v,
                      (double)want[i * (size_t)info.dim + (size_t)d]);
        }
    }
    json_decref(vecs);
    free(body);
    /* the config's limit, in TEI's error shape */
    cr_assert_eq(http(port, "POST", "/embed", "{\"inputs\": [\"a\", \"b\", \"c\"]}", &body), 422, "%s", body);
    cr_assert(strstr(body, "\"error_type\":\"validation\""), "%s", body);
    free(body);
    cr_assert_eq(http(port, "GET", "/health", NULL, &body), 200);
    free(body);
    cr_assert_eq(ember_server_in_flight(srv), 0);
    /* drained: a connection opened before the drain gets 503 for new work */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    const char *req = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
    char buf[4096];
    cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    ssize_t got = read(fd, buf, sizeof buf - 1);
    cr_assert(got > 0 && strncmp(buf, "HTTP/1.1 200", 12) == 0, "before the drain: %.*s", (int)(got > 0 ? got : 0),
              buf);
    ember_server_drain(srv);
    cr_assert_eq(write(fd, req, strlen(req)), (ssize_t)strlen(req));
    got = read(fd, buf, sizeof buf - 1);
    cr_assert(got > 0 && strncmp(buf, "HTTP/1.1 503", 12) == 0, "after the drain: %.*s", (int)(got > 0 ? got : 0),
              buf);
    close(fd);
    ember_server_stop(srv);
    ember_model_free(m);
}

/* A model with Dense modules: /embed answers their width, /embed_all the
 * encoder's hidden size per token (tests/data/tiny-st-dense: 32 and 64). */
Test(server_api, dense_model_widths) {
    ember_model *m = load_model(SRC_PATH("tests/data/tiny-st-dense"));
    ember_server_config cfg = ember_server_default_config();
    cfg.port = 0;
    cfg.tokenization_workers = 1;
    ember_server *srv = NULL;
    cr_assert_eq(ember_server_start(m, &cfg, &srv), EMBER_OK, "%s", ember_last_error());
    int port = ember_server_port(srv);
    char *body;
    cr_assert_eq(http(port, "POST", "/embed", "{\"inputs\": [\"hello world\"]}", &body), 200, "%s", body);
    json_t *v = json_loads(body, 0, NULL);
    cr_assert_eq(json_array_size(json_array_get(v, 0)), 32, "%s", body);
    const char *texts[] = {"hello world"};
    float want[32];
    cr_assert_eq(ember_encode(m, texts, NULL, 1, NULL, want, NULL), EMBER_OK);
    for (size_t d = 0; d < 32; d++)
        cr_assert(fabs(json_number_value(json_array_get(json_array_get(v, 0), d)) - want[d]) < 1e-5, "dim %zu", d);
    json_decref(v);
    free(body);
    cr_assert_eq(http(port, "POST", "/embed_all", "{\"inputs\": [\"hello world\"]}", &body), 200, "%s", body);
    v = json_loads(body, 0, NULL);
    json_t *toks = json_array_get(v, 0);
    cr_assert_eq(json_array_size(toks), 4, "%s", body); /* [CLS] hello world [SEP] */
    for (size_t t = 0; t < 4; t++) cr_assert_eq(json_array_size(json_array_get(toks, t)), 64);
    json_decref(v);
    free(body);
    ember_server_stop(srv);
    ember_model_free(m);
}

/* Two servers in one process, each with its own port and counters. */
Test(server_api, two_servers_side_by_side) {
    ember_model *m1 = load_model(TINY_DIR), *m2 = load_model(TINY_DIR);
    ember_server_config cfg = ember_server_default_config();
    cfg.port = 0;
    cfg.tokenization_workers = 1;
    cfg.served_model_name = "first";
    ember_server *a = NULL, *b = NULL;
    cr_assert_eq(ember_server_start(m1, &cfg, &a), EMBER_OK, "%s", ember_last_error());
    cfg.served_model_name = "second";
    cr_assert_eq(ember_server_start(m2, &cfg, &b), EMBER_OK, "%s", ember_last_error());
    cr_assert_neq(ember_server_port(a), ember_server_port(b));
    char *body;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(http(ember_server_port(a), "POST", "/embed", "{\"inputs\": \"x\"}", &body), 200);
        free(body);
    }
    cr_assert_eq(http(ember_server_port(b), "GET", "/info", NULL, &body), 200);
    cr_assert(strstr(body, "\"model_id\":\"second\""), "%s", body);
    free(body);
    cr_assert_eq(http(ember_server_port(b), "GET", "/metrics", NULL, &body), 200);
    cr_assert(strstr(body, "te_request_count{method=\"single\"} 0"), "the second server counted the first's: %.300s",
              strstr(body, "te_request_count") ? strstr(body, "te_request_count") : body);
    free(body);
    cr_assert_eq(http(ember_server_port(a), "GET", "/metrics", NULL, &body), 200);
    cr_assert(strstr(body, "te_request_count{method=\"single\"} 3"), "%.300s", body);
    free(body);
    ember_server_stop(a);
    ember_server_stop(b);
    ember_model_free(m1);
    ember_model_free(m2);
}

Test(server_api, bad_configs_are_refused) {
    ember_model *m = load_model(TINY_DIR);
    ember_server *srv = (ember_server *)0x1;
    ember_server_config cfg = ember_server_default_config();
    cfg.port = 70000;
    cr_assert_eq(ember_server_start(m, &cfg, &srv), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert_null(srv);
    cr_assert(strstr(ember_last_error(), "port"), "%s", ember_last_error());
    cfg = ember_server_default_config();
    cfg.port = 0;
    cfg.host = "no.such.host.invalid";
    cr_assert_neq(ember_server_start(m, &cfg, &srv), EMBER_OK);
    cr_assert(strstr(ember_last_error(), "no.such.host.invalid"), "%s", ember_last_error());
    ember_model_free(m);
}

/* --api-key's comparison: equal only when every byte and the length agree
 * (the time it takes is not tested here: it has no branch on the bytes). */
Test(server_api, api_key_comparison) {
    const char *key = "s3cret-key";
    size_t n = strlen(key);
    cr_assert(secret_equal("s3cret-key", n, key, n));
    cr_assert_not(secret_equal("s3cret-kez", n, key, n));
    cr_assert_not(secret_equal("t3cret-key", n, key, n));
    cr_assert_not(secret_equal("s3cret-ke", n - 1, key, n));          /* a prefix */
    cr_assert_not(secret_equal("s3cret-keys3cret-key", 2 * n, key, n)); /* the key twice */
    cr_assert_not(secret_equal("s3cret-key\0", n + 1, key, n));
    cr_assert_not(secret_equal("", 0, key, n));
    cr_assert(secret_equal("", 0, "", 0));
    cr_assert_not(secret_equal("a", 1, "", 0));
    /* a difference in any one byte is seen */
    char given[16];
    for (size_t i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(given, key, n);
            given[i] = (char)(given[i] ^ (1 << bit));
            cr_assert_not(secret_equal(given, n, key, n), "byte %zu bit %d", i, bit);
        }
}

/* POST /search over stored vectors: the hits ember_search gives for the
 * query embedded as the vectors were, with the corpus's lines. */
Test(server_api, search_route_over_stored_vectors) {
    char *dir = copy_dir(TINY_DIR);
    char corpus[4200], vecs[4200];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    snprintf(vecs, sizeof vecs, "%s/vectors", dir);
    FILE *f = fopen(corpus, "w");
    const char *lines[] = {"the quick brown fox", "lazy dogs sleep all day", "time flies like an arrow",
                           "fruit flies like a banana", "hello world"};
    for (int i = 0; i < 5; i++) fprintf(f, "%s\n", lines[i]);
    fclose(f);
    ember_model *m = load_model(dir);
    ember_embed_options o = ember_embed_default_options();
    o.input = corpus;
    o.output = vecs;
    o.format = EMBER_OUTPUT_NPY;
    o.shard_rows = 2;
    o.dimensions = 32;                  /* cut: the query must be cut the same way */
    o.encode.normalize = EMBER_NORMALIZE_ON;
    cr_assert_eq(ember_embed_file(&m, 1, &o, NULL), EMBER_OK, "%s", ember_last_error());
    ember_server_config cfg = ember_server_default_config();
    cfg.port = 0;
    cfg.tokenization_workers = 1;
    cfg.vectors = vecs;
    cfg.corpus = corpus;
    ember_server *srv;
    cr_assert_eq(ember_server_start(m, &cfg, &srv), EMBER_OK, "%s", ember_last_error());
    char *body;
    cr_assert_eq(http(ember_server_port(srv), "POST", "/search",
                      "{\"query\": [\"fruit flies like a banana\", \"a fox\"], \"k\": 3, \"return_text\": true}", &body),
                 200, "%s", body);
    json_t *got = json_loads(body, 0, NULL);
    cr_assert(json_is_array(got) && json_array_size(got) == 2, "%s", body);
    /* the reference: the query embedded, normalised, cut to 32 and normalised again */
    const char *qs[] = {"fruit flies like a banana", "a fox"};
    float q[2 * 64];
    ember_encode_params ep = ember_encode_default_params();
    ep.normalize = EMBER_NORMALIZE_ON;
    cr_assert_eq(ember_encode(m, qs, NULL, 2, &ep, q, NULL), EMBER_OK);
    for (int i = 0; i < 2; i++) {
        double n2 = 0;
        for (int k = 0; k < 32; k++) n2 += (double)q[i * 64 + k] * q[i * 64 + k];
        for (int k = 0; k < 32; k++) q[i * 32 + k] = (float)(q[i * 64 + k] / sqrt(n2));
    }
    ember_index *ix;
    cr_assert_eq(ember_index_open(vecs, &ix), EMBER_OK);
    ember_hit hits[6];
    int32_t found[2];
    ember_search_params sp = ember_search_default_params();
    sp.k = 3;
    cr_assert_eq(ember_search(ix, q, 2, 32, &sp, hits, found), EMBER_OK);
    for (size_t i = 0; i < 2; i++) {
        json_t *list = json_array_get(got, i);
        cr_assert_eq(json_array_size(list), 3, "%s", body);
        for (size_t j = 0; j < 3; j++) {
            json_t *h = json_array_get(list, j);
            long long id = json_integer_value(json_object_get(h, "id"));
            cr_assert_eq(id, hits[i * 3 + j].row, "query %zu hit %zu: %lld vs %lld", i, j, id,
                         (long long)hits[i * 3 + j].row);
            cr_assert(fabs(json_number_value(json_object_get(h, "score")) - hits[i * 3 + j].score) < 1e-4);
            cr_assert_str_eq(json_string_value(json_object_get(h, "text")), lines[id]);
        }
    }
    json_decref(got);
    free(body);
    cr_assert_eq(hits[0].row, 3, "the query's own line first");
    /* a single query: one list; bad k: TEI's validation error */
    cr_assert_eq(http(ember_server_port(srv), "POST", "/search", "{\"query\": \"hello world\", \"k\": 1}", &body), 200);
    cr_assert(strstr(body, "[{\"id\":4,") == body, "%s", body);
    free(body);
    cr_assert_eq(http(ember_server_port(srv), "POST", "/search", "{\"query\": \"x\", \"k\": 0}", &body), 422);
    free(body);
    ember_server_stop(srv);
    ember_index_free(ix);
    /* a server without vectors: /search is not there; vectors of another size refused at start */
    cfg.vectors = NULL;
    cfg.corpus = NULL;
    cr_assert_eq(ember_server_start(m, &cfg, &srv), EMBER_OK);
    cr_assert_eq(http(ember_server_port(srv), "POST", "/search", "{\"query\": \"x\"}", &body), 404);
    cr_assert(strstr(body, "--vectors"), "%s", body);
    free(body);
    ember_server_stop(srv);
    cfg.vectors = vecs;
    cfg.corpus = TINY_DIR "/vocab.txt";
    cr_assert_eq(ember_server_start(m, &cfg, &srv), EMBER_ERR_INVALID_ARGUMENT);
    cr_assert(strstr(ember_last_error(), "vocab.txt has") && strstr(ember_last_error(), "holds 5 vectors"), "%s",
              ember_last_error());
    ember_model_free(m);
    remove_dir(dir);
}
