/* The server's life: start the stages, serve until a signal, drain, stop. */
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "server_internal.h"

void server_block_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    /* a client that hangs up must not end the server */
    signal(SIGPIPE, SIG_IGN);
}

/* Each connection is a descriptor: take what the hard limit allows. */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* Wait up to `seconds` for SIGTERM/SIGINT; returns the signal or 0. */
static int wait_signal(double seconds) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    int sig = seconds < 0 ? sigwaitinfo(&set, NULL) : sigtimedwait(&set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

static void wait_in_flight(server *s, double deadline_s) {
    double t0 = now_s();
    while (atomic_load(&s->in_flight) > 0 && now_s() - t0 < deadline_s) {
        if (wait_signal(0.02)) {
            fprintf(stderr, "ember serve: second signal: not waiting for the requests in flight\n");
            return;
        }
    }
}

int server_run(ember_model *model, const server_config *cfg) {
    server *s = calloc(1, sizeof *s);
    if (!s) return 1;
    s->model = model;
    s->cfg = *cfg;
    ember_model_get_info(model, &s->info);
    s->dim = s->info.dim;
    s->max_input_length = s->info.max_length;
    metrics_init(s->max_input_length);
    raise_fd_limit();

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->port);
    int gai = getaddrinfo(cfg->host, port, &hints, &ai);
    if (gai != 0) {
        fprintf(stderr, "ember serve: error: cannot resolve --host '%s': %s\n", cfg->host, gai_strerror(gai));
        free(s);
        return 1;
    }
    int ok = workers_start(s) && batcher_start(s);
    if (ok) s->daemon = http_start(s, ai->ai_addr, ai->ai_family == AF_INET6);
    freeaddrinfo(ai);
    if (!s->daemon) {
        if (ok)
            fprintf(stderr, "ember serve: error: cannot listen on %s:%d (is the port in use?)\n", cfg->host, cfg->port);
        else fprintf(stderr, "ember serve: error: out of memory starting the server\n");
        batcher_stop(s);
        workers_stop(s);
        free(s);
        return 1;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
    fprintf(stderr,
            "ember serve: listening on http://%s%s%s:%u (model %s, %d-dim, %s; max_batch_tokens %d, "
            "max_input_length %d, %d tokenization workers)\n",
            strchr(cfg->host, ':') ? "[" : "", cfg->host, strchr(cfg->host, ':') ? "]" : "",
            di ? di->port : (unsigned)cfg->port, cfg->served_model_name, s->dim, s->info.device_name,
            cfg->max_batch_tokens, s->max_input_length, cfg->tokenization_workers);

    /* 0 is EINTR, which Linux returns after SIGSTOP and SIGCONT (a shell's
     * ^Z and fg, a debugger attaching): not a request to stop */
    int sig;
    while (!(sig = wait_signal(-1))) {
    }
    fprintf(stderr, "ember serve: %s: finishing %d requests in flight, accepting no more\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", atomic_load(&s->in_flight));
    atomic_store(&s->draining, 1);
    MHD_socket listen_fd = MHD_quiesce_daemon(s->daemon);
    wait_in_flight(s, cfg->shutdown_timeout);
    if (atomic_load(&s->in_flight) > 0) {
        /* what is queued is answered 503, a batch running finishes; bodies
         * still arriving are cut off when the daemon stops */
        fprintf(stderr, "ember serve: giving up on %d requests in flight\n", atomic_load(&s->in_flight));
        batcher_abort(s);
        wait_in_flight(s, 10);
    }
    batcher_stop(s);
    workers_stop(s);
    /* every connection has been resumed: libmicrohttpd may stop */
    MHD_stop_daemon(s->daemon);
    if (listen_fd != MHD_INVALID_SOCKET) close(listen_fd);
    fprintf(stderr, "ember serve: stopped\n");
    free(s);
    return 0;
}
