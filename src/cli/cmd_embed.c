/* ember embed: one vector per input line, in input order, streamed through
 * src/pipeline (tokenizer threads, length-bucketed batches, one thread per
 * model, an in-order writer with optional resumable shards). */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "pipeline/pipeline.h"
#include "pipeline/sink.h"

static const char *usage =
    "usage: ember embed [options] [INPUT]\n"
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
    "input:\n"
    "      --jsonl              INPUT is JSON lines; the text is in --field (default \"text\")\n"
    "      --field NAME         the JSON field holding the text (implies --jsonl)\n"
    "vectors:\n"
    "      --pooling P          cls, mean, max or mean_sqrt_len (default: the model's)\n"
    "      --normalize          L2-normalise the vectors (default: as the model says)\n"
    "      --no-normalize       do not\n"
    "      --no-truncate        fail on a text longer than the model's maximum\n"
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

static atomic_int stop_signal; /* lock-free: may be set in a handler, read by any thread */

static void on_stop(int sig) {
    if (stop_signal) { /* a second Ctrl-C: leave at once */
        signal(sig, SIG_DFL);
        raise(sig);
    }
    stop_signal = sig;
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

static void print_summary(const sink_totals *t, const pipeline_result *r, int64_t resumed_rows, int32_t resumed_shards,
                          const ember_model_info *info, int32_t n_models, char devices[][32]) {
    double dt = r->elapsed;
    fprintf(stderr, "ember embed: %lld rows (%lld tokens) in %.2f s, %.1f rows/s, %d-dim, %s\n", (long long)t->rows,
            (long long)t->tokens, dt, dt > 0 ? r->rows / dt : 0.0, info->dim, info->device_name);
    if (resumed_rows > 0)
        fprintf(stderr, "ember embed: resumed after %lld rows in %d shards; this run embedded %lld rows\n",
                (long long)resumed_rows, resumed_shards, (long long)r->rows);
    fprintf(stderr, "ember embed: %.0f tokens/s, %.1f rows/s", dt > 0 ? r->tokens / dt : 0.0, dt > 0 ? r->rows / dt : 0.0);
    if (n_models > 0 && dt > 0) {
        fputs("; device busy", stderr);
        for (int32_t i = 0; i < r->n_busy; i++)
            fprintf(stderr, "%s %s %.0f%%", i ? "," : "", devices[i], 100.0 * r->busy[i] / dt);
    }
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) fprintf(stderr, "; peak memory %.0f MiB", ru.ru_maxrss / 1024.0);
    fputc('\n', stderr);
    if (t->empty) fprintf(stderr, "ember embed: %lld empty lines embedded as empty texts\n", (long long)t->empty);
    if (t->truncated)
        fprintf(stderr, "ember embed: %lld texts truncated to %d tokens (first: row %lld)\n", (long long)t->truncated,
                info->max_length, (long long)t->first_truncated);
    if (t->invalid_utf8)
        fprintf(stderr, "ember embed: %lld texts had invalid UTF-8, replaced by U+FFFD (first: row %lld)\n",
                (long long)t->invalid_utf8, (long long)t->first_invalid);
}

int cmd_embed(int argc, char **argv) {
    model_opts mo;
    model_opts_init(&mo);
    const char *output = NULL, *format = NULL, *field = NULL;
    int jsonl_in = 0, quiet = 0, resume = 0, progress = -1, all_gpus = 0;
    int32_t batch_rows = 0, window = 8192, tok_threads = 0, replicas = 0, shard_rows32 = 0;
    ember_encode_params ep = ember_encode_default_params();
    enum { OPT_SHARDS = 2000, OPT_RESUME, OPT_WINDOW, OPT_TOKTHREADS, OPT_REPLICAS, OPT_PROGRESS, OPT_NOPROGRESS };
    static struct option opts[] = {{"output", required_argument, 0, 'o'},
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
                                   MODEL_OPTIONS,
                                   {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "o:qhm:", opts, NULL)) != -1) {
        switch (c) {
        case 'o': output = optarg; break;
        case 'f': format = optarg; break;
        case 'J': jsonl_in = 1; break;
        case 'F': field = optarg, jsonl_in = 1; break;
        case 'p':
            if (strcmp(optarg, "cls") == 0) ep.pooling = EMBER_POOLING_CLS;
            else if (strcmp(optarg, "mean") == 0) ep.pooling = EMBER_POOLING_MEAN;
            else if (strcmp(optarg, "max") == 0) ep.pooling = EMBER_POOLING_MAX;
            else if (strcmp(optarg, "mean_sqrt_len") == 0) ep.pooling = EMBER_POOLING_MEAN_SQRT_LEN;
            else die_usage("embed", "--pooling must be cls, mean, max or mean_sqrt_len, got '%s'", optarg);
            break;
        case 'N': ep.normalize = EMBER_NORMALIZE_ON; break;
        case 'n': ep.normalize = EMBER_NORMALIZE_OFF; break;
        case 'T': ep.truncate = 0; break;
        case 'b':
            if (!parse_int(optarg, "--batch", 1, 1 << 20, &batch_rows)) return 2;
            break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        case OPT_SHARDS:
            if (!parse_int(optarg, "--shard-rows", 1, 2000000000, &shard_rows32)) return 2;
            break;
        case OPT_RESUME: resume = 1; break;
        case OPT_WINDOW:
            if (!parse_int(optarg, "--window", 1, 1 << 24, &window)) return 2;
            break;
        case OPT_TOKTHREADS:
            if (!parse_int(optarg, "--tokenizer-threads", 1, 256, &tok_threads)) return 2;
            break;
        case OPT_REPLICAS:
            if (!parse_int(optarg, "--replicas", 1, 64, &replicas)) return 2;
            break;
        case OPT_PROGRESS: progress = 1; break;
        case OPT_NOPROGRESS: progress = 0; break;
        case 1001:
            if (strcmp(optarg, "cuda:all") == 0) {
                all_gpus = 1;
                mo.params.device = EMBER_DEVICE_CUDA;
                break;
            }
            all_gpus = 0;
            if (!model_opts_parse(&mo, c, optarg)) return 2;
            break;
        default:
            if (c == '?' || !model_opts_parse(&mo, c, optarg)) {
                fputs(usage, stderr);
                return 2;
            }
        }
    }
    if (argc - optind > 1) die_usage("embed", "one INPUT at most (got %d)", argc - optind);
    const char *input = optind < argc ? argv[optind] : "-";
    if (!field) field = "text";
    if (ends_with(input, ".jsonl") || ends_with(input, ".jsonl.gz")) jsonl_in = 1;
    const int64_t shard_rows = shard_rows32;
    const int to_stdout = !output || strcmp(output, "-") == 0;
    sink_format fmt = SINK_JSONL;
    if (format) {
        if (strcmp(format, "npy") == 0) fmt = SINK_NPY;
        else if (strcmp(format, "npy16") == 0) fmt = SINK_NPY16;
        else if (strcmp(format, "jsonl") != 0)
            die_usage("embed", "--format must be npy, npy16 or jsonl, got '%s'", format);
    } else if (shard_rows > 0) {
        fmt = SINK_NPY;
    } else if (output && ends_with(output, ".npy")) {
        fmt = SINK_NPY;
    }
    if (fmt != SINK_JSONL && to_stdout)
        die_usage("embed", ".npy output needs a file (-o PATH); use --format jsonl for stdout");
    if (shard_rows > 0 && to_stdout) die_usage("embed", "--shard-rows needs an output directory (-o DIR)");
    if (resume && shard_rows <= 0)
        die_usage("embed", "--resume continues a run of shards: give the first run's -o DIR and --shard-rows N");
    if (resume && strcmp(input, "-") != 0 && access(input, R_OK) != 0) {
        fprintf(stderr, "ember: error: %s: cannot open: %s\n", input, strerror(errno));
        return 1;
    }

    /* From here on Ctrl-C / SIGTERM only set a flag the pipeline polls (no
     * SA_RESTART); during the model loads that means a stop right after. */
    struct sigaction sa, old_int, old_term;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);

    /* Models: one per GPU with cuda:all, times --replicas. */
    int is_cuda = mo.params.device == EMBER_DEVICE_CUDA ||
                  (mo.params.device == EMBER_DEVICE_AUTO && ember_cuda_device_count() > 0);
    int32_t n_gpus = 1;
    if (all_gpus) {
        n_gpus = ember_cuda_device_count();
        if (n_gpus <= 0) {
            fprintf(stderr, "ember: error: --device cuda:all: no CUDA device%s\n",
                    n_gpus < 0 ? " (ember was built without CUDA)" : " found");
            return 1;
        }
    }
    if (replicas == 0) replicas = is_cuda ? 2 : 1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    if (!is_cuda && replicas > 1 && mo.params.n_threads == 0)
        mo.params.n_threads = (int32_t)(cores / replicas > 0 ? cores / replicas : 1);
    if (tok_threads == 0) tok_threads = is_cuda ? (int32_t)(cores > 3 ? cores - 2 : 1) : 1;
    const int32_t n_models = n_gpus * replicas;
    ember_model **models = calloc((size_t)n_models, sizeof *models);
    char(*devices)[32] = calloc((size_t)n_models, sizeof *devices);
    if (!models || !devices) {
        fprintf(stderr, "ember: error: out of memory\n");
        return 1;
    }
    int rc = 1;
    sink *out = NULL;
    for (int32_t g = 0; g < n_gpus; g++)
        for (int32_t r = 0; r < replicas; r++) {
            model_opts one = mo;
            if (all_gpus) one.params.device_index = g;
            ember_model *m = model_opts_load(&one);
            if (!m) goto done;
            models[g * replicas + r] = m;
            /* "cuda:0", or "cuda:0[1]" for the second model on it */
            int n = is_cuda ? snprintf(devices[g * replicas + r], sizeof devices[0], "cuda:%d", one.params.device_index)
                            : snprintf(devices[g * replicas + r], sizeof devices[0], "cpu");
            if (replicas > 1) snprintf(devices[g * replicas + r] + n, sizeof devices[0] - (size_t)n, "[%d]", r);
        }
    ember_model_info info;
    ember_model_get_info(models[0], &info);
    /* the budget the library chose (4096 tokens on the CPU, 32768 on a GPU, at least one text) */
    const int32_t token_budget = info.max_batch_tokens;

    /* What the output depends on, for the manifest. */
    ep.pooling = ep.pooling == EMBER_POOLING_DEFAULT ? info.pooling : ep.pooling;
    ep.normalize = ep.normalize == EMBER_NORMALIZE_DEFAULT ? (info.normalize ? EMBER_NORMALIZE_ON : EMBER_NORMALIZE_OFF)
                                                           : ep.normalize;
    struct stat st;
    char weights[4200];
    snprintf(weights, sizeof weights, "%s/model.safetensors", mo.model_dir);
    int have_input = strcmp(input, "-") != 0 && stat(input, &st) == 0;
    sink_opts so;
    memset(&so, 0, sizeof so);
    so.path = output;
    so.format = fmt;
    so.shard_rows = shard_rows;
    so.resume = resume;
    so.id.input_path = input;
    so.id.input_size = have_input ? (int64_t)st.st_size : -1;
    so.id.input_mtime = have_input ? (int64_t)st.st_mtime : -1;
    so.id.jsonl_field = jsonl_in ? field : NULL;
    so.id.model_name = info.name;
    so.id.model_dir = mo.model_dir;
    so.id.dim = info.dim;
    so.id.max_length = info.max_length;
    so.id.weights_bytes = stat(weights, &st) == 0 ? (int64_t)st.st_size : -1;
    so.id.pooling = ember_pooling_str(ep.pooling);
    so.id.normalize = ep.normalize == EMBER_NORMALIZE_ON;
    so.id.truncate = ep.truncate;
    so.id.device = info.device == EMBER_DEVICE_CUDA ? "cuda" : "cpu";
    so.id.dtype = ember_dtype_str(info.dtype);
    so.id.window = window;
    so.id.token_budget = token_budget;
    so.id.batch_rows = batch_rows;
    int complete = 0;
    if (!sink_open(&out, &so, &complete)) goto done;
    int64_t skip_rows = 0, skip_bytes = 0;
    uint32_t skip_crc = 0;
    int32_t skip_shards = 0;
    sink_resume_point(out, &skip_rows, &skip_crc, &skip_bytes, &skip_shards);
    pipeline_result res;
    memset(&res, 0, sizeof res);
    if (complete) {
        if (!quiet) {
            fprintf(stderr, "ember embed: %s is complete already (%d shards); nothing to do\n", output, skip_shards);
            print_summary(sink_get_totals(out), &res, 0, 0, &info, 0, devices);
        }
        rc = 0;
        goto done;
    }

    pipeline_opts po;
    memset(&po, 0, sizeof po);
    po.input = input;
    po.jsonl = jsonl_in;
    po.field = field;
    po.models = models;
    po.n_models = n_models;
    po.encode = ep;
    po.token_budget = token_budget;
    po.max_batch_rows = batch_rows;
    po.window = window;
    po.align_rows = shard_rows;
    po.tokenizer_threads = tok_threads;
    po.skip_rows = skip_rows;
    po.skip_crc = skip_crc;
    po.skip_bytes = skip_bytes;
    po.out = out;
    po.stop = &stop_signal;
    po.progress = progress == 0 ? 0 : isatty(2) ? 1 : progress == 1 ? 2 : 0;
    int ok = pipeline_run(&po, &res);
    if (ok) ok = sink_finish(out);
    else sink_abort(out);

    if (res.interrupted) {
        const char *why = stop_signal == SIGTERM ? "SIGTERM" : "Ctrl-C";
        int64_t done_rows;
        int32_t done_shards;
        sink_committed(out, &done_rows, &done_shards);
        if (shard_rows > 0) {
            fprintf(stderr, "ember embed: interrupted (%s): %s holds %lld rows in %d complete shards, consistent\n", why,
                    output, (long long)done_rows, done_shards);
            fprintf(stderr, "ember embed: resume with:\n");
            print_resume_command(argc, argv);
        } else if (to_stdout) {
            fprintf(stderr, "ember embed: interrupted (%s) after %lld rows written to stdout\n", why,
                    (long long)res.rows);
        } else {
            fprintf(stderr,
                    "ember embed: interrupted (%s): %s was not written (nothing partial is left); for a run that can "
                    "be resumed, write shards: -o DIR --shard-rows N\n",
                    why, output);
        }
        rc = stop_signal == SIGTERM ? 143 : 130;
        goto done;
    }
    if (ok && !quiet) print_summary(sink_get_totals(out), &res, skip_rows, skip_shards, &info, n_models, devices);
    rc = ok ? 0 : 1;
done:
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sink_free(out);
    for (int32_t i = 0; i < n_models; i++) ember_model_free(models[i]);
    free(models);
    free(devices);
    return rc;
}
