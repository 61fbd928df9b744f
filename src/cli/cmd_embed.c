/* ember embed: one vector per input line, in input order, through the
 * library's streaming engine (ember_embed_file: tokenizer threads, length-
 * bucketed batches, one thread per model, an in-order writer with optional
 * resumable shards). This file parses the options, loads the models, turns
 * Ctrl-C / SIGTERM into the engine's cancel, and prints what happened. */
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"

static const char *usage =
    "usage: ember embed [options] [INPUT]\n"
    "       ember embed --tokens -o TOKENS.npy [options] [INPUT]\n"
    "\n"
    "Embed every line of INPUT (a text file, .gz, or - for stdin; default -) and\n"
    "write one vector per line, in order. Empty lines are embedded as empty texts\n"
    "and counted; over-long lines are truncated to the model's maximum and counted;\n"
    "invalid UTF-8 is replaced and counted. Nothing is skipped. INPUT is streamed:\n"
    "memory is set by --window and --max-batch-tokens, never by INPUT's size.\n"
    "\n"
    "output:\n"
    "  -o, --output PATH        .npy (float32 N x D) or .jsonl; default: JSONL on stdout.\n"
    "                           With --shard-rows: a directory of shards and manifest.json\n"
    "      --format F           npy, npy16 (float16) or jsonl (default: from the extension;\n"
    "                           npy for a directory of shards)\n"
    "      --shard-rows N       write shards of N rows (shard-00000.npy, ...) into the -o\n"
    "                           directory, each made durable before the next starts\n"
    "      --resume             continue the run in the -o directory after its last\n"
    "                           complete shard (a fresh start if there is none); the\n"
    "                           result is the same as that of an uninterrupted run\n"
    "token vectors (--tokens):\n"
    "      --tokens             every token's last hidden state instead of one vector per\n"
    "                           line ([CLS] and [SEP] included): -o FILE.npy gets float32\n"
    "                           (total tokens x hidden size), and --index one JSON line per\n"
    "                           input line: {\"line\": 1-based, \"rows\": [first, end) in the\n"
    "                           .npy, \"ids\", \"tokens\", \"offsets\": byte [start, end) in the\n"
    "                           line per token ([0, 0] for [CLS]/[SEP]), \"truncated\",\n"
    "                           \"invalid_utf8\"}\n"
    "      --index PATH         where --tokens writes that index (default: OUTPUT with .npy\n"
    "                           replaced by .jsonl)\n"
    "input:\n"
    "      --jsonl              INPUT is JSON lines; the text is in --field (default \"text\")\n"
    "      --field NAME         the JSON field holding the text (implies --jsonl)\n"
    "vectors:\n"
    "      --pooling P          cls, mean, max or mean_sqrt_len (default: the model's)\n"
    "      --normalize          L2-normalise the vectors (default: as the model says)\n"
    "      --no-normalize       do not (a Normalize module that ends modules.json is\n"
    "                           skipped; Dense modules still run)\n"
    "      --no-truncate        fail on a text longer than the model's maximum\n"
    "      --prompt-name NAME   put the model's prompt NAME (config_sentence_transformers.json's\n"
    "                           prompts) before every text (default: its default_prompt_name)\n"
    "      --prompt TEXT        put TEXT before every text (\"\": none, whatever the model's\n"
    "                           default); with include_prompt false in the model's Pooling, the\n"
    "                           prompt's tokens are left out of the vector, as sentence-\n"
    "                           transformers does\n"
    "      --dimensions N       keep the first N dimensions (Matryoshka models), normalised\n"
    "                           again when the vectors are normalised\n"
    "      --precision P        float32, float16, int8, uint8, binary or ubinary (sentence-\n"
    "                           transformers' quantize_embeddings; binary: bits packed 8 a byte)\n"
    "      --calibration PATH   int8/uint8 ranges: the min and max per dimension of a .npy of\n"
    "                           vectors, or an earlier run's (its directory, or FILE.ranges.json);\n"
    "                           default: of the first window of this run (recorded in the\n"
    "                           manifest, or in OUTPUT.ranges.json beside one file)\n"
    "throughput (none of these changes the output):\n"
    "      --batch N            at most N texts per forward pass (default: as many as\n"
    "                           --max-batch-tokens holds)\n"
    "      --window N           texts sorted by length together, so that batches hold texts\n"
    "                           of similar length (default 8192); three windows are in\n"
    "                           memory at a time: about 3 x N x (4 x dim + text) bytes\n"
    "      --tokenizer-threads N  threads tokenizing ahead of the model (default: 1 on the\n"
    "                           CPU, every core but two with CUDA)\n"
    "      --replicas N         models per device, each fed by its own thread (default 1;\n"
    "                           2 on a GPU, so one model's copies overlap the other's compute)\n"
    "      --device cuda:all    spread the stream over every local GPU\n"
    "progress:\n"
    "      --progress           a progress line on stderr even when it is not a terminal\n"
    "      --no-progress        none, even on a terminal (default: on a terminal only)\n"
    "  -q, --quiet              no summary on stderr\n" MODEL_OPTIONS_HELP "  -h, --help\n";

static atomic_int stop_signal; /* lock-free: set in a handler, read by any thread */

static void on_stop(int sig) {
    if (stop_signal) { /* a second Ctrl-C: leave at once */
        signal(sig, SIG_DFL);
        raise(sig);
    }
    stop_signal = sig;
}

static int stop_requested(void *user) {
    (void)user;
    return atomic_load(&stop_signal) != 0;
}

static void log_note(ember_log_level level, const char *msg, void *user) {
    (void)level;
    progress_clear(user);
    fprintf(stderr, "ember embed: %s\n", msg);
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* argv again, quoted for a POSIX shell, with --resume added. */
static void print_resume_command(int argc, char **argv) {
    fputs("  ember", stderr);
    int has_resume = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        has_resume |= strcmp(a, "--resume") == 0;
        int plain = *a != '\0';
        for (const char *c = a; *c; c++)
            if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=,+@%", *c)) plain = 0;
        if (plain) {
            fprintf(stderr, " %s", a);
            continue;
        }
        fputs(" '", stderr);
        for (const char *c = a; *c; c++) {
            if (*c == '\'') fputs("'\\''", stderr);
            else fputc(*c, stderr);
        }
        fputc('\'', stderr);
    }
    fputs(has_resume ? "\n" : " --resume\n", stderr);
}

/* ---- options ---------------------------------------------------------------------------- */

typedef struct {
    model_opts mo;
    ember_embed_options eo;
    const char *format;
    int quiet, progress, all_gpus;
    int32_t replicas;
    int tokens;        /* --tokens */
    const char *index; /* --index, or made from the output's name */
    char index_buf[4200];
} embed_cli;

static int embed_resolve(embed_cli *c, const char *input, const char *field, int jsonl_in, int32_t shard_rows);
static int tokens_resolve(embed_cli *c, const char *input, const char *field, int jsonl_in, int32_t shard_rows);

enum {
    OPT_SHARDS = 2000,
    OPT_RESUME,
    OPT_WINDOW,
    OPT_TOKTHREADS,
    OPT_REPLICAS,
    OPT_PROGRESS,
    OPT_NOPROGRESS,
    OPT_DIMENSIONS,
    OPT_PRECISION,
    OPT_CALIBRATION,
    OPT_TOKENS,
    OPT_INDEX,
    OPT_PROMPT,
    OPT_PROMPT_NAME
};
static const struct option opts[] = {{"output", required_argument, 0, 'o'},
                               {"format", required_argument, 0, 'f'},
                               {"jsonl", no_argument, 0, 'J'},
                               {"field", required_argument, 0, 'F'},
                               {"pooling", required_argument, 0, 'p'},
                               {"normalize", no_argument, 0, 'N'},
                               {"no-normalize", no_argument, 0, 'n'},
                               {"no-truncate", no_argument, 0, 'T'},
                               {"batch", required_argument, 0, 'b'},
                               {"quiet", no_argument, 0, 'q'},
                               {"help", no_argument, 0, 'h'},
                               {"shard-rows", required_argument, 0, OPT_SHARDS},
                               {"resume", no_argument, 0, OPT_RESUME},
                               {"window", required_argument, 0, OPT_WINDOW},
                               {"tokenizer-threads", required_argument, 0, OPT_TOKTHREADS},
                               {"replicas", required_argument, 0, OPT_REPLICAS},
                               {"progress", no_argument, 0, OPT_PROGRESS},
                               {"no-progress", no_argument, 0, OPT_NOPROGRESS},
                               {"dimensions", required_argument, 0, OPT_DIMENSIONS},
                               {"precision", required_argument, 0, OPT_PRECISION},
                               {"calibration", required_argument, 0, OPT_CALIBRATION},
                               {"tokens", no_argument, 0, OPT_TOKENS},
                               {"index", required_argument, 0, OPT_INDEX},
                               {"prompt", required_argument, 0, OPT_PROMPT},
                               {"prompt-name", required_argument, 0, OPT_PROMPT_NAME},
                               MODEL_OPTIONS,
                               {0, 0, 0, 0}};

/* Parse argv into c; 0 to go on, -1 after --help, else the exit status. */
static int embed_parse(int argc, char **argv, embed_cli *c) {
    memset(c, 0, sizeof *c);
    model_opts_init(&c->mo);
    c->eo = ember_embed_default_options();
    c->eo.tokenizer_threads = 0; /* decided by the device below */
    c->progress = -1;
    const char *field = NULL;
    int jsonl_in = 0;
    int32_t shard_rows = 0;
    int o;
    while ((o = getopt_long(argc, argv, "o:qhm:", opts, NULL)) != -1) {
        switch (o) {
        case 'o': c->eo.output = optarg; break;
        case 'f': c->format = optarg; break;
        case 'J': jsonl_in = 1; break;
        case 'F': field = optarg, jsonl_in = 1; break;
        case 'p':
            if (ember_pooling_parse(optarg, &c->eo.encode.pooling) != EMBER_OK)
                die_usage("embed", "--pooling must be cls, mean, max or mean_sqrt_len, got '%s'", optarg);
            break;
        case 'N': c->eo.encode.normalize = EMBER_NORMALIZE_ON; break;
        case 'n': c->eo.encode.normalize = EMBER_NORMALIZE_OFF; break;
        case 'T': c->eo.encode.truncate = 0; break;
        case 'b':
            if (!parse_int(optarg, "--batch", 1, 1 << 20, &c->eo.max_batch_rows)) return 2;
            break;
        case 'q': c->quiet = 1; break;
        case 'h': fputs(usage, stdout); return -1;
        case OPT_SHARDS:
            if (!parse_int(optarg, "--shard-rows", 1, 2000000000, &shard_rows)) return 2;
            break;
        case OPT_RESUME: c->eo.resume = 1; break;
        case OPT_WINDOW:
            if (!parse_int(optarg, "--window", 1, 1 << 24, &c->eo.window)) return 2;
            break;
        case OPT_TOKTHREADS:
            if (!parse_int(optarg, "--tokenizer-threads", 1, 256, &c->eo.tokenizer_threads)) return 2;
            break;
        case OPT_REPLICAS:
            if (!parse_int(optarg, "--replicas", 1, 64, &c->replicas)) return 2;
            break;
        case OPT_PROGRESS: c->progress = 1; break;
        case OPT_NOPROGRESS: c->progress = 0; break;
        case OPT_DIMENSIONS:
            if (!parse_int(optarg, "--dimensions", 1, 1 << 20, &c->eo.dimensions)) return 2;
            break;
        case OPT_PRECISION:
            if (ember_precision_parse(optarg, &c->eo.precision) != EMBER_OK)
                die_usage("embed", "--precision: %s", ember_last_error());
            break;
        case OPT_CALIBRATION: c->eo.calibration = optarg; break;
        case OPT_TOKENS: c->tokens = 1; break;
        case OPT_INDEX: c->index = optarg; break;
        case OPT_PROMPT: c->eo.encode.prompt = optarg; break;
        case OPT_PROMPT_NAME: c->eo.encode.prompt_name = optarg; break;
        case 1001:
            c->all_gpus = strcmp(optarg, "cuda:all") == 0;
            if (c->all_gpus) c->mo.params.device = EMBER_DEVICE_CUDA;
            else if (!model_opts_parse(&c->mo, o, optarg)) return 2;
            break;
        default:
            if (o == '?' || !model_opts_parse(&c->mo, o, optarg)) {
                fputs(usage, stderr);
                return 2;
            }
        }
    }
    if (argc - optind > 1) die_usage("embed", "one INPUT at most (got %d)", argc - optind);
    if (c->tokens && (c->eo.encode.prompt || c->eo.encode.prompt_name))
        die_usage("embed", "--prompt and --prompt-name make vectors: they do not go with --tokens");
    if (c->tokens) return tokens_resolve(c, optind < argc ? argv[optind] : "-", field, jsonl_in, shard_rows);
    if (c->index) die_usage("embed", "--index goes with --tokens");
    return embed_resolve(c, optind < argc ? argv[optind] : "-", field, jsonl_in, shard_rows);
}

/* What the options leave open (the input's and the output's formats), and
 * the combinations that make no sense; 0 to go on, else the exit status. */
static int embed_resolve(embed_cli *c, const char *input, const char *field, int jsonl_in, int32_t shard_rows) {
    c->eo.input = input;
    if (ends_with(input, ".jsonl") || ends_with(input, ".jsonl.gz")) jsonl_in = 1;
    c->eo.jsonl_field = jsonl_in ? (field ? field : "text") : NULL;
    c->eo.shard_rows = shard_rows;
    const char *out = c->eo.output;
    const int to_stdout = !out || strcmp(out, "-") == 0;
    c->eo.format = EMBER_OUTPUT_JSONL;
    if (c->format) {
        if (strcmp(c->format, "npy") == 0) c->eo.format = EMBER_OUTPUT_NPY;
        else if (strcmp(c->format, "npy16") == 0) c->eo.format = EMBER_OUTPUT_NPY16;
        else if (strcmp(c->format, "jsonl") != 0)
            die_usage("embed", "--format must be npy, npy16 or jsonl, got '%s'", c->format);
    } else if (shard_rows > 0 || (out && ends_with(out, ".npy"))) {
        c->eo.format = EMBER_OUTPUT_NPY;
    }
    if (c->eo.format != EMBER_OUTPUT_JSONL && to_stdout)
        die_usage("embed", ".npy output needs a file (-o PATH); use --format jsonl for stdout");
    if (shard_rows > 0 && to_stdout) die_usage("embed", "--shard-rows needs an output directory (-o DIR)");
    if (c->eo.resume && shard_rows <= 0)
        die_usage("embed", "--resume continues a run of shards: give the first run's -o DIR and --shard-rows N");
    if (c->eo.resume && strcmp(input, "-") != 0 && access(input, R_OK) != 0) {
        fprintf(stderr, "ember: error: %s: cannot open: %s\n", input, strerror(errno));
        return 1;
    }
    return 0;
}

/* --tokens: one .npy and its index; the options of pooled vectors make no
 * sense with it. 0 to go on, else the exit status. */
static int tokens_resolve(embed_cli *c, const char *input, const char *field, int jsonl_in, int32_t shard_rows) {
    const ember_embed_options *o = &c->eo;
    const struct {
        int set;
        const char *name;
    } pooled_only[] = {{c->format != NULL, "--format"},
                       {shard_rows > 0, "--shard-rows"},
                       {o->resume, "--resume"},
                       {o->encode.pooling != EMBER_POOLING_DEFAULT, "--pooling"},
                       {o->encode.normalize != EMBER_NORMALIZE_DEFAULT, "--normalize / --no-normalize"},
                       {o->dimensions > 0, "--dimensions"},
                       {o->precision != EMBER_PRECISION_FLOAT32, "--precision"},
                       {o->calibration != NULL, "--calibration"},
                       {c->replicas > 0, "--replicas"},
                       {o->window != ember_embed_default_options().window, "--window"},
                       {o->tokenizer_threads > 0, "--tokenizer-threads"},
                       {o->max_batch_rows > 0, "--batch"}};
    for (size_t k = 0; k < sizeof pooled_only / sizeof *pooled_only; k++)
        if (pooled_only[k].set)
            die_usage("embed", "%s does not go with --tokens (token vectors are the hidden states as they are)",
                      pooled_only[k].name);
    if (c->all_gpus) die_usage("embed", "--tokens runs on one device (not cuda:all)");
    const char *out = c->eo.output;
    if (!out || strcmp(out, "-") == 0 || !ends_with(out, ".npy"))
        die_usage("embed", "--tokens writes a .npy file: give -o FILE.npy");
    if (!c->index) {
        snprintf(c->index_buf, sizeof c->index_buf, "%.*s.jsonl", (int)(strlen(out) - 4), out);
        c->index = c->index_buf;
    }
    if (strcmp(c->index, out) == 0) die_usage("embed", "--index must differ from the output (%s)", out);
    c->eo.input = input;
    if (ends_with(input, ".jsonl") || ends_with(input, ".jsonl.gz")) jsonl_in = 1;
    c->eo.jsonl_field = jsonl_in ? (field ? field : "text") : NULL;
    return 0;
}

/* ---- models ---------------------------------------------------------------------------------- */

typedef struct {
    ember_model **m;
    int32_t n;
    char (*names)[32]; /* "cpu", "cuda:0", or "cuda:0[1]" for the second model on it */
} model_set;

static void models_free(model_set *ms) {
    for (int32_t i = 0; i < ms->n; i++) ember_model_free(ms->m[i]);
    free(ms->m);
    free(ms->names);
}

/* One model per GPU with cuda:all, times --replicas (default: 2 on a GPU, so
 * that one model's copies overlap the other's compute; 1 on the CPU, whose
 * threads the replicas would share). */
static int models_load(embed_cli *c, model_set *ms) {
    memset(ms, 0, sizeof *ms);
    int32_t n_gpus = 1;
    if (c->all_gpus && (n_gpus = ember_cuda_device_count()) <= 0) {
        fprintf(stderr, "ember: error: --device cuda:all: no CUDA device%s\n",
                n_gpus < 0 ? " (ember was built without CUDA)" : " found");
        return 0;
    }
    ember_model *first = model_opts_load(&c->mo);
    if (!first) return 0;
    ember_model_info info;
    ember_model_get_info(first, &info);
    const int is_cuda = info.device == EMBER_DEVICE_CUDA;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    int32_t replicas = c->replicas ? c->replicas : is_cuda ? 2 : 1;
    if (!is_cuda && replicas > 1 && c->mo.params.n_threads == 0) {
        /* the cores shared among the replicas: the first is loaded again */
        ember_model_free(first);
        first = NULL;
        c->mo.params.n_threads = (int32_t)(cores / replicas > 0 ? cores / replicas : 1);
    }
    if (c->eo.tokenizer_threads == 0) c->eo.tokenizer_threads = is_cuda ? (int32_t)(cores > 3 ? cores - 2 : 1) : 1;
    ms->n = n_gpus * replicas;
    ms->m = calloc((size_t)ms->n, sizeof *ms->m);
    ms->names = calloc((size_t)ms->n, sizeof *ms->names);
    if (!ms->m || !ms->names) {
        ember_model_free(first);
        fprintf(stderr, "ember: error: out of memory\n");
        return 0;
    }
    for (int32_t g = 0; g < n_gpus; g++)
        for (int32_t r = 0; r < replicas; r++) {
            const int32_t i = g * replicas + r;
            model_opts one = c->mo;
            if (c->all_gpus) one.params.device_index = g;
            if (i == 0 && first) ms->m[0] = first;
            else if (!(ms->m[i] = model_opts_load(&one))) return 0;
            int n = is_cuda ? snprintf(ms->names[i], sizeof ms->names[0], "cuda:%d", one.params.device_index)
                            : snprintf(ms->names[i], sizeof ms->names[0], "cpu");
            if (replicas > 1) snprintf(ms->names[i] + n, sizeof ms->names[0] - (size_t)n, "[%d]", r);
        }
    return 1;
}

/* ---- what happened ------------------------------------------------------------------------------- */

/* What the input held that was not plain text (the same lines for --tokens). */
static void print_input_notes(const ember_embed_totals *t, int32_t max_length) {
    if (t->empty) fprintf(stderr, "ember embed: %lld empty lines embedded as empty texts\n", (long long)t->empty);
    if (t->truncated)
        fprintf(stderr, "ember embed: %lld texts truncated to %d tokens (first: row %lld)\n", (long long)t->truncated,
                max_length, (long long)t->first_truncated);
    if (t->invalid_utf8)
        fprintf(stderr, "ember embed: %lld texts had invalid UTF-8, replaced by U+FFFD (first: row %lld)\n",
                (long long)t->invalid_utf8, (long long)t->first_invalid);
}

static void print_summary(const ember_embed_result *r, const ember_model_info *info, const model_set *ms) {
    const ember_embed_totals *t = &r->totals;
    const double dt = r->elapsed;
    fprintf(stderr, "ember embed: %lld rows (%lld tokens) in %.2f s, %.1f rows/s, %d-dim, %s\n", (long long)t->rows,
            (long long)t->tokens, dt, dt > 0 ? (double)r->rows / dt : 0.0, info->dim, info->device_name);
    if (r->resumed_rows > 0)
        fprintf(stderr, "ember embed: resumed after %lld rows in %d shards; this run embedded %lld rows\n",
                (long long)r->resumed_rows, r->resumed_shards, (long long)r->rows);
    fprintf(stderr, "ember embed: %.0f tokens/s, %.1f rows/s", dt > 0 ? (double)r->tokens / dt : 0.0,
            dt > 0 ? (double)r->rows / dt : 0.0);
    if (r->n_models > 0 && dt > 0) {
        fputs("; device busy", stderr);
        for (int32_t i = 0; i < r->n_models && i < 64; i++)
            fprintf(stderr, "%s %s %.0f%%", i ? "," : "", ms->names[i], 100.0 * r->busy[i] / dt);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) fprintf(stderr, "; peak memory %.0f MiB", ru.ru_maxrss / 1024.0);
    fputc('\n', stderr);
    print_input_notes(t, info->max_length);
}

/* ember embed --tokens, after the options: one model, one pass. */
static int run_tokens(embed_cli *c) {
    ember_model *m = model_opts_load(&c->mo);
    if (!m) return 1;
    tokens_job job = {c->eo.input, c->eo.jsonl_field, c->eo.output, c->index, c->eo.encode.truncate,
                      stop_requested, NULL, NULL, 0};
    ember_embed_totals t;
    double t0 = clock_now();
    ember_status st = embed_tokens(m, &job, &t);
    double dt = clock_now() - t0;
    ember_model_info info;
    ember_model_get_info(m, &info);
    int rc = 0;
    if (st == EMBER_ERR_CANCELLED) {
        fprintf(stderr, "ember embed: interrupted (%s): %s and %s were not written\n",
                stop_signal == SIGTERM ? "SIGTERM" : "Ctrl-C", c->eo.output, c->index);
        rc = stop_signal == SIGTERM ? 143 : 130;
    } else if (st != EMBER_OK) {
        rc = cli_fail();
    } else if (!c->quiet) {
        fprintf(stderr, "ember embed: %lld lines, %lld token vectors (%d-dim) in %.2f s, %s: %s, index %s\n",
                (long long)t.rows, (long long)t.tokens, info.hidden_size, dt, info.device_name, c->eo.output,
                c->index);
        print_input_notes(&t, info.max_length);
    }
    ember_model_free(m);
    return rc;
}

/* What a cancelled run left, and how to go on; the exit status. */
static int report_interrupted(const embed_cli *c, const ember_embed_result *r, int argc, char **argv) {
    const char *why = stop_signal == SIGTERM ? "SIGTERM" : "Ctrl-C";
    const char *out = c->eo.output;
    if (c->eo.shard_rows > 0) {
        fprintf(stderr, "ember embed: interrupted (%s): %s holds %lld rows in %d complete shards, consistent\n", why,
                out, (long long)r->committed_rows, r->committed_shards);
        fprintf(stderr, "ember embed: resume with:\n");
        print_resume_command(argc, argv);
    } else if (!out || strcmp(out, "-") == 0) {
        fprintf(stderr, "ember embed: interrupted (%s) after %lld rows written to stdout\n", why, (long long)r->rows);
    } else {
        fprintf(stderr,
                "ember embed: interrupted (%s): %s was not written (nothing partial is left); for a run that can be "
                "resumed, write shards: -o DIR --shard-rows N\n",
                why, out);
    }
    return stop_signal == SIGTERM ? 143 : 130;
}

int cmd_embed(int argc, char **argv) {
    embed_cli c;
    int rc = embed_parse(argc, argv, &c);
    if (rc) return rc < 0 ? 0 : rc;
    /* From here on Ctrl-C / SIGTERM only set a flag the engine polls (no
     * SA_RESTART, so that a write blocked on a full pipe returns); during
     * the model loads that means a stop right after. */
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    model_set ms = {0};
    rc = 1;
    if (c.tokens) {
        rc = run_tokens(&c);
    } else if (models_load(&c, &ms)) {
        progress_line pl = {c.progress == 0 ? 0 : isatty(2) ? 1 : c.progress == 1 ? 2 : 0, 0, 0};
        c.eo.progress = progress_draw;
        c.eo.progress_user = &pl;
        c.eo.log = log_note;
        c.eo.log_user = &pl;
        c.eo.cancel = stop_requested;
        ember_embed_result res;
        ember_status st = ember_embed_file(ms.m, ms.n, &c.eo, &res);
        progress_clear(&pl);
        ember_model_info info;
        ember_model_get_info(ms.m[0], &info);
        if (st == EMBER_ERR_CANCELLED) {
            rc = report_interrupted(&c, &res, argc, argv);
        } else if (st != EMBER_OK) {
            rc = cli_fail();
        } else {
            if (res.already_complete && !c.quiet)
                fprintf(stderr, "ember embed: %s is complete already (%d shards); nothing to do\n", c.eo.output,
                        res.resumed_shards);
            if (!c.quiet) print_summary(&res, &info, &ms);
            rc = 0;
        }
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    models_free(&ms);
    return rc;
}
