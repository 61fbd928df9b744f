/* ember serve: the library's HTTP server (ember_server_*), its options, its
 * model, and the signals that stop it. */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"

static const char *usage =
    "usage: ember serve [options]\n"
    "\n"
    "Serve the model over HTTP with Hugging Face text-embeddings-inference's routes\n"
    "(POST /embed, /embed_all, /tokenize, /similarity; GET /info, /health, /metrics) and\n"
    "OpenAI's POST /v1/embeddings (float or base64); with a cross-encoder\n"
    "(BertForSequenceClassification) POST /rerank and /predict instead of the embedding\n"
    "routes. Requests from all connections are merged\n"
    "into batches by a token budget, run by one thread that owns the model. SIGTERM\n"
    "or SIGINT: stop accepting, finish the requests in flight, exit.\n"
    "\n"
    "      --host ADDR                  address to listen on (default 127.0.0.1; 0.0.0.0: all)\n"
    "      --port N                     port (default 3000; 0: any free one, printed)\n"
    "      --max-concurrent-requests N  requests in flight before answering 429 (default 512)\n"
    "      --max-batch-requests N       inputs per forward pass (default: no limit but the tokens)\n"
    "      --max-client-batch-size N    inputs per request (default 32)\n"
    "      --max-input-length N         tokens per input (default and limit: the model's)\n"
    "      --auto-truncate              cut over-long inputs unless a request says truncate=false\n"
    "                                   (default: refuse them unless it says truncate=true)\n"
    "      --tokenization-workers N     threads parsing and tokenizing (default: every core)\n"
    "      --payload-limit BYTES        largest request body (default 2000000)\n"
    "      --served-model-name NAME     model_id in /info and model in OpenAI answers\n"
    "                                   (default: the model directory's name)\n"
    "      --api-key KEY                require 'Authorization: Bearer KEY' on the POST routes\n"
    "      --idle-timeout S             close a connection idle this long (default 60; 0: never)\n"
    "      --shutdown-timeout S         wait this long for requests in flight at exit (default 60)\n"
    "      --vectors PATH               serve POST /search over vectors 'ember embed' stored with\n"
    "                                   this model ({\"query\": ..., \"k\": 10, \"return_text\": false})\n"
    "      --corpus FILE                the lines of those vectors, for return_text (held in memory)\n"
    "      --default-prompt-name NAME   the prompt (config_sentence_transformers.json's prompts) put\n"
    "                                   before the inputs of requests with no \"prompt_name\" (on\n"
    "                                   /embed, /embed_all, /search and /v1/embeddings; default:\n"
    "                                   the model's default_prompt_name)\n"
    "      --default-prompt TEXT        the same as a text (\"\": none)\n"
    MODEL_OPTIONS_HELP
    "                           (--max-batch-tokens is the token budget of a batch)\n"
    "      --model-id ID        the same as --model (text-embeddings-inference's spelling)\n"
    "  -h, --help\n";

static int parse_long(const char *s, const char *what, long lo, long hi, long *out) {
    int32_t v32;
    if (hi <= INT32_MAX) {
        if (!parse_int(s, what, lo, hi, &v32)) return 0;
        *out = v32;
        return 1;
    }
    char *end;
    long v = strtol(s, &end, 10);
    if (end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "ember: error: %s must be an integer in [%ld, %ld], got '%s'\n", what, lo, hi, s);
        return 0;
    }
    *out = v;
    return 1;
}

/* Each connection is a descriptor: take what the hard limit allows. */
static void raise_fd_limit(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* SIGTERM and SIGINT are blocked in every thread (before the model starts
 * threads of its own, so that all inherit it) and taken here with sigwait;
 * a client that hangs up must not end the server. */
static void block_signals(void) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* Wait up to `seconds` (< 0: for ever) for SIGTERM/SIGINT; the signal or 0. */
static int wait_signal(double seconds) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    struct timespec ts = {(time_t)seconds, (long)((seconds - (double)(time_t)seconds) * 1e9)};
    int sig = seconds < 0 ? sigwaitinfo(&set, NULL) : sigtimedwait(&set, NULL, &ts);
    return sig > 0 ? sig : 0;
}

/* Serve until a signal; then finish what is in flight for up to `timeout`
 * seconds (a second signal: at once) and stop. */
static void serve_until_signal(ember_server *srv, int32_t timeout) {
    int sig;
    /* 0 is EINTR, which Linux returns after SIGSTOP and SIGCONT (a shell's
     * ^Z and fg, a debugger attaching): not a request to stop */
    while (!(sig = wait_signal(-1))) {
    }
    fprintf(stderr, "ember serve: %s: finishing %d requests in flight, accepting no more\n",
            sig == SIGINT ? "SIGINT" : "SIGTERM", ember_server_in_flight(srv));
    ember_server_drain(srv);
    double t0 = clock_now();
    while (ember_server_in_flight(srv) > 0 && clock_now() - t0 < timeout) {
        if (wait_signal(0.02)) {
            fprintf(stderr, "ember serve: second signal: not waiting for the requests in flight\n");
            break;
        }
    }
    if (ember_server_in_flight(srv) > 0)
        fprintf(stderr, "ember serve: giving up on %d requests in flight\n", ember_server_in_flight(srv));
    ember_server_stop(srv);
    fprintf(stderr, "ember serve: stopped\n");
}

/* Parse argv; 0 to go on, -1 after --help, else the exit status. */
static int serve_parse(int argc, char **argv, model_opts *mo_out, ember_server_config *cfg_out,
                       int32_t *shutdown_timeout) {
    model_opts mo;
    model_opts_init(&mo);
    ember_server_config cfg = ember_server_default_config();
    long v;
    int32_t max_input_length = 0;
    static struct option opts[] = {{"host", required_argument, 0, 'H'},
                                   {"port", required_argument, 0, 'p'},
                                   {"max-concurrent-requests", required_argument, 0, 'c'},
                                   {"max-batch-requests", required_argument, 0, 'r'},
                                   {"max-client-batch-size", required_argument, 0, 'b'},
                                   {"max-input-length", required_argument, 0, 'L'},
                                   {"auto-truncate", no_argument, 0, 'a'},
                                   {"tokenization-workers", required_argument, 0, 'w'},
                                   {"payload-limit", required_argument, 0, 'P'},
                                   {"served-model-name", required_argument, 0, 'n'},
                                   {"api-key", required_argument, 0, 'k'},
                                   {"idle-timeout", required_argument, 0, 'i'},
                                   {"shutdown-timeout", required_argument, 0, 's'},
                                   {"vectors", required_argument, 0, 'V'},
                                   {"corpus", required_argument, 0, 'C'},
                                   {"default-prompt-name", required_argument, 0, 'D'},
                                   {"default-prompt", required_argument, 0, 'E'},
                                   {"help", no_argument, 0, 'h'},
                                   {"model-id", required_argument, 0, 1000}, /* TEI's spelling of --model */
                                   MODEL_OPTIONS,
                                   {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "hm:", opts, NULL)) != -1) {
        switch (c) {
        case 'H': cfg.host = optarg; break;
        case 'p':
            if (!parse_int(optarg, "--port", 0, 65535, &cfg.port)) return 2;
            break;
        case 'c':
            if (!parse_int(optarg, "--max-concurrent-requests", 1, 1 << 20, &cfg.max_concurrent_requests)) return 2;
            break;
        case 'r':
            if (!parse_int(optarg, "--max-batch-requests", 1, 1 << 24, &cfg.max_batch_requests)) return 2;
            break;
        case 'b':
            if (!parse_int(optarg, "--max-client-batch-size", 1, 1 << 20, &cfg.max_client_batch_size)) return 2;
            break;
        case 'L':
            if (!parse_int(optarg, "--max-input-length", 3, 1 << 20, &max_input_length)) return 2;
            break;
        case 'a': cfg.auto_truncate = 1; break;
        case 'w':
            if (!parse_int(optarg, "--tokenization-workers", 1, 1024, &cfg.tokenization_workers)) return 2;
            break;
        case 'P':
            if (!parse_long(optarg, "--payload-limit", 1, 1L << 40, &v)) return 2;
            cfg.payload_limit = v;
            break;
        case 'n': cfg.served_model_name = optarg; break;
        case 'k': cfg.api_key = optarg; break;
        case 'i':
            if (!parse_int(optarg, "--idle-timeout", 0, 1 << 20, &cfg.idle_timeout)) return 2;
            break;
        case 's':
            if (!parse_int(optarg, "--shutdown-timeout", 0, 1 << 20, shutdown_timeout)) return 2;
            break;
        case 'V': cfg.vectors = optarg; break;
        case 'C': cfg.corpus = optarg; break;
        case 'D': cfg.default_prompt_name = optarg; break;
        case 'E': cfg.default_prompt = optarg; break;
        case 'h': fputs(usage, stdout); return -1;
        default:
            if (c == '?' || !model_opts_parse(&mo, c, optarg)) {
                fputs(usage, stderr);
                return 2;
            }
        }
    }
    if (optind < argc) die_usage("serve", "unexpected argument '%s'", argv[optind]);
    if (max_input_length) {
        if (mo.params.max_length && mo.params.max_length != max_input_length)
            die_usage("serve", "--max-input-length and --max-length differ (they are the same option)");
        mo.params.max_length = max_input_length;
    }
    *mo_out = mo;
    *cfg_out = cfg;
    return 0;
}

int cmd_serve(int argc, char **argv) {
    block_signals();
    model_opts mo;
    ember_server_config cfg;
    int32_t shutdown_timeout = 60;
    int rc = serve_parse(argc, argv, &mo, &cfg, &shutdown_timeout);
    if (rc) return rc < 0 ? 0 : rc;
    ember_model *m = model_opts_load(&mo);
    if (!m) return 1;
    ember_model_info info;
    ember_model_get_info(m, &info);
    if (mo.params.max_batch_tokens && mo.params.max_batch_tokens < info.max_length) {
        fprintf(stderr, "ember serve: error: --max-batch-tokens %d is less than the longest input, %d tokens "
                        "(lower --max-input-length or raise --max-batch-tokens)\n",
                mo.params.max_batch_tokens, info.max_length);
        ember_model_free(m);
        return 2;
    }
    raise_fd_limit();
    ember_server *srv = NULL;
    if (ember_server_start(m, &cfg, &srv) != EMBER_OK) {
        fprintf(stderr, "ember serve: error: %s\n", ember_last_error());
        ember_model_free(m);
        return 1;
    }
    const int v6 = strchr(cfg.host, ':') != NULL;
    long workers = cfg.tokenization_workers ? cfg.tokenization_workers : sysconf(_SC_NPROCESSORS_ONLN);
    fprintf(stderr,
            "ember serve: listening on http://%s%s%s:%d (model %s, %d-dim, %s; max_batch_tokens %d, "
            "max_input_length %d, %ld tokenization workers)\n",
            v6 ? "[" : "", cfg.host, v6 ? "]" : "", ember_server_port(srv),
            cfg.served_model_name ? cfg.served_model_name : info.name, info.dim, info.device_name,
            info.max_batch_tokens, info.max_length, workers);
    serve_until_signal(srv, shutdown_timeout);
    ember_model_free(m);
    return 0;
}
