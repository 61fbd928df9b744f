/* ember serve: the HTTP server (src/server), its options and its model. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "server/server.h"

static const char *usage =
    "usage: ember serve [options]\n"
    "\n"
    "Serve the model over HTTP with Hugging Face text-embeddings-inference's routes\n"
    "(POST /embed, /embed_all, /tokenize; GET /info, /health, /metrics) and OpenAI's\n"
    "POST /v1/embeddings (float or base64). Requests from all connections are merged\n"
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

int cmd_serve(int argc, char **argv) {
    /* before the model starts threads, so that every thread inherits it */
    server_block_signals();
    model_opts mo;
    model_opts_init(&mo);
    server_config cfg = {
        .host = "127.0.0.1",
        .port = 3000,
        .max_concurrent_requests = 512,
        .max_client_batch_size = 32,
        .payload_limit = 2000000,
        .idle_timeout = 60,
        .shutdown_timeout = 60,
    };
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
            if (!parse_int(optarg, "--shutdown-timeout", 0, 1 << 20, &cfg.shutdown_timeout)) return 2;
            break;
        case 'h': fputs(usage, stdout); return 0;
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
    if (!cfg.tokenization_workers) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        cfg.tokenization_workers = n > 0 ? (int32_t)n : 1;
    }
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
    /* The batch budget is the model's workspace, so the library never
     * splits a batch the server made. */
    cfg.max_batch_tokens = info.max_batch_tokens;
    if (!cfg.served_model_name) cfg.served_model_name = info.name;
    int rc = server_run(m, &cfg);
    ember_model_free(m);
    return rc;
}
