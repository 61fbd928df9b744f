/* ember bench: tokenization throughput, end-to-end throughput and latency per
 * batch size, and peak memory, for one model on one workload. A program over
 * the public API like any user's: what it measures is what a caller gets. */
#include <ctype.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"

static const char *usage =
    "usage: ember bench [options]\n"
    "\n"
    "Measure a model on a workload: tokenization throughput on one thread,\n"
    "end-to-end texts/s and tokens/s for each batch size (texts per ember_encode\n"
    "call), latency percentiles of the calls (batch 1: single texts), and peak\n"
    "memory. Each measurement warms up first, then times whole passes over the\n"
    "texts and reports the median pass. Prints a table; --json writes it all.\n"
    "\n"
    "  -i, --input PATH         corpus: one text per line (.gz or - for stdin)\n"
    "  -w, --workload NAME      a named length distribution instead, texts made of\n"
    "                           whole vocabulary words (lengths in tokens, [CLS] and\n"
    "                           [SEP] included): short (8-32), passages (100-250),\n"
    "                           long (600, cut to the model's maximum), mixed (60%\n"
    "                           short, 30% passages, 10% long), len:N, uniform:A-B\n"
    "  -n, --texts N            use the first N texts (default: the whole corpus;\n"
    "                           512 for a named workload)\n"
    "  -b, --batch-sizes LIST   comma-separated (default 1,8,32,128)\n"
    "      --runs R             timed passes per batch size, at least (default 3)\n"
    "      --seconds S          ... and at least S seconds of them (default 2)\n"
    "      --warmup S           warm-up seconds before each measurement (default 0.5)\n"
    "      --no-tokenize        skip the tokenization measurement\n"
    "      --tokenize-only      only the tokenization measurement\n"
    "      --seed N             seed for a named workload (default 1)\n"
    "      --label TEXT         a name for the workload in the output\n"
    "      --json PATH          write the results as JSON (- for stdout)\n"
    "  -q, --quiet              no table\n" MODEL_OPTIONS_HELP "  -h, --help\n"
    "\n"
    "Example: ember bench -w mixed --threads 2 -b 1,32 --json bench.json\n";

/* ---- named workloads ------------------------------------------------------- */

static uint64_t rng_next(uint64_t *s) { /* splitmix64: deterministic across platforms */
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int32_t rng_range(uint64_t *s, int32_t lo, int32_t hi) { /* [lo, hi] */
    return lo + (int32_t)(rng_next(s) % (uint64_t)(hi - lo + 1));
}

typedef struct {
    int kind; /* 0: uniform [lo, hi]; 1: mixed */
    int32_t lo, hi;
} length_dist;

static int length_dist_parse(const char *name, length_dist *d) {
    int32_t a, b;
    char tail;
    if (strcmp(name, "short") == 0) *d = (length_dist){0, 8, 32};
    else if (strcmp(name, "passages") == 0) *d = (length_dist){0, 100, 250};
    else if (strcmp(name, "long") == 0) *d = (length_dist){0, 600, 600};
    else if (strcmp(name, "mixed") == 0) *d = (length_dist){1, 0, 0};
    else if (sscanf(name, "len:%d%c", &a, &tail) == 1 && a >= 3 && a <= 1 << 16) *d = (length_dist){0, a, a};
    else if (sscanf(name, "uniform:%d-%d%c", &a, &b, &tail) == 2 && a >= 3 && b >= a && b <= 1 << 16)
        *d = (length_dist){0, a, b};
    else return 0;
    return 1;
}

static int32_t length_draw(const length_dist *d, uint64_t *rng) {
    if (d->kind == 0) return rng_range(rng, d->lo, d->hi);
    int32_t u = rng_range(rng, 0, 99);
    if (u < 60) return rng_range(rng, 8, 32);
    if (u < 90) return rng_range(rng, 100, 250);
    return 600;
}

/* Whole words of the vocabulary (letters only, no continuation pieces or
 * special tokens): each becomes exactly one token, so a text of n - 2 words
 * is n tokens with [CLS] and [SEP]. */
static int synth_texts(str_list *s, ember_model *m, const char *name, int32_t n, uint64_t seed) {
    length_dist d;
    if (!length_dist_parse(name, &d)) {
        fprintf(stderr, "ember: error: unknown workload '%s' (short, passages, long, mixed, len:N, uniform:A-B)\n",
                name);
        return 0;
    }
    ember_model_info info;
    ember_model_get_info(m, &info);
    int32_t *words = malloc((size_t)info.vocab_size * sizeof *words), n_words = 0;
    if (!words) return 0;
    for (int32_t id = 0; id < info.vocab_size; id++) {
        const char *w = ember_token_text(m, id);
        if (!w || strlen(w) < 2) continue;
        int letters = 1;
        for (const char *p = w; *p && letters; p++) letters = isalpha((unsigned char)*p) != 0;
        if (letters) words[n_words++] = id;
    }
    if (n_words < 100) {
        fprintf(stderr, "ember: error: the vocabulary has too few whole words (%d) to make a workload\n", n_words);
        free(words);
        return 0;
    }
    uint64_t rng = seed;
    char *buf = NULL;
    size_t cap = 0;
    int ok = 1;
    for (int32_t i = 0; i < n && ok; i++) {
        int32_t len = length_draw(&d, &rng), nw = len - 2;
        size_t used = 0;
        for (int32_t k = 0; k < nw; k++) {
            const char *w = ember_token_text(m, words[rng_range(&rng, 0, n_words - 1)]);
            size_t wl = strlen(w);
            if (used + wl + 2 > cap) {
                cap = (used + wl + 2) * 2;
                char *nb = realloc(buf, cap);
                if (!nb) {
                    ok = 0;
                    break;
                }
                buf = nb;
            }
            if (k) buf[used++] = ' ';
            memcpy(buf + used, w, wl);
            used += wl;
        }
        if (ok) ok = str_list_add(s, buf ? buf : "", used) == EMBER_OK;
    }
    free(buf);
    free(words);
    if (!ok) fprintf(stderr, "ember: error: out of memory making the workload\n");
    return ok;
}

/* ---- the machine ---------------------------------------------------------------- */

typedef struct {
    char cpu[160];
    int cores;
    char isa[64];
    double load_start, load_end;
    char gpu[160];
} machine_info;

static double load_average(void) {
    double l = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf", &l) != 1) l = -1;
        fclose(f);
    }
    return l;
}

static void machine_read(machine_info *mi) {
    memset(mi, 0, sizeof *mi);
    snprintf(mi->cpu, sizeof mi->cpu, "unknown CPU");
    FILE *f = fopen("/proc/cpuinfo", "r");
    if (f) {
        char line[512];
        while (fgets(line, sizeof line, f)) {
            if (strncmp(line, "model name", 10) == 0) {
                char *v = strchr(line, ':');
                if (v) {
                    v++;
                    while (*v == ' ' || *v == '\t') v++;
                    v[strcspn(v, "\n")] = '\0';
                    snprintf(mi->cpu, sizeof mi->cpu, "%s", v);
                }
                break;
            }
        }
        fclose(f);
    }
    mi->cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    snprintf(mi->isa, sizeof mi->isa, "%s",
             __builtin_cpu_supports("avx512f") ? "avx512f"
             : __builtin_cpu_supports("avx2")  ? "avx2"
                                               : "sse2");
#else
    snprintf(mi->isa, sizeof mi->isa, "generic");
#endif
    mi->load_start = load_average();
    int32_t ngpu = ember_cuda_device_count();
    if (ngpu < 0) snprintf(mi->gpu, sizeof mi->gpu, "none (built without CUDA)");
    else if (ngpu == 0) snprintf(mi->gpu, sizeof mi->gpu, "none");
    else snprintf(mi->gpu, sizeof mi->gpu, "%d CUDA device%s", ngpu, ngpu > 1 ? "s" : "");
}

static double rss_mb(void) { /* resident now */
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2) resident = 0;
        fclose(f);
    }
    return (double)resident * (double)sysconf(_SC_PAGESIZE) / (1024.0 * 1024.0);
}

static double peak_rss_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_maxrss / 1024.0; /* kB on Linux */
}

/* ---- statistics --------------------------------------------------------------------- */

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Linear interpolation between order statistics (numpy's default). */
static double percentile(const double *sorted, size_t n, double q) {
    if (n == 0) return 0;
    double pos = q / 100.0 * (double)(n - 1);
    size_t i = (size_t)pos;
    if (i + 1 >= n) return sorted[n - 1];
    return sorted[i] + (pos - (double)i) * (sorted[i + 1] - sorted[i]);
}

static double median_of(double *v, size_t n) {
    qsort(v, n, sizeof *v, cmp_double);
    return percentile(v, n, 50);
}

/* ---- measurements --------------------------------------------------------------------- */

typedef struct {
    double texts_per_s, tokens_per_s, bytes_per_s;
    int64_t tokens;
    int passes;
    double pass_s[64];
} tokenize_result;

/* Every text through ember_tokenize on this thread, no truncation (the whole
 * text, as `tokenizers` encodes it), special tokens added. */
static int tokenize_pass(ember_model *m, const str_list *s, ember_token **buf, int32_t *cap, int64_t *tokens) {
    ember_tokenize_params tp = ember_tokenize_default_params();
    tp.truncate = 0;
    int64_t total = 0;
    for (int32_t i = 0; i < s->n; i++) {
        int32_t n;
        ember_status st;
        while ((st = ember_tokenize(m, s->s[i], s->len[i], NULL, 0, &tp, *buf, *cap, &n, NULL)) ==
               EMBER_ERR_BUFFER_TOO_SMALL) {
            ember_token *nb = realloc(*buf, (size_t)n * sizeof *nb);
            if (!nb) return 0;
            *buf = nb;
            *cap = n;
        }
        if (st != EMBER_OK) {
            fprintf(stderr, "ember: error: text %d: %s\n", i + 1, ember_last_error());
            return 0;
        }
        total += n;
    }
    *tokens = total;
    return 1;
}

static int measure_tokenize(ember_model *m, const str_list *s, int runs, double seconds, double warmup,
                            tokenize_result *r) {
    memset(r, 0, sizeof *r);
    ember_token *buf = NULL;
    int32_t cap = 0;
    int ok = 1;
    double t0 = clock_now();
    do ok = tokenize_pass(m, s, &buf, &cap, &r->tokens);
    while (ok && clock_now() - t0 < warmup);
    double spent = 0;
    while (ok && r->passes < 64 && (r->passes < runs || spent < seconds)) {
        double t = clock_now();
        ok = tokenize_pass(m, s, &buf, &cap, &r->tokens);
        t = clock_now() - t;
        r->pass_s[r->passes++] = t;
        spent += t;
    }
    free(buf);
    if (!ok) return 0;
    double sorted[64];
    memcpy(sorted, r->pass_s, (size_t)r->passes * sizeof *sorted);
    double med = median_of(sorted, (size_t)r->passes);
    r->texts_per_s = s->n / med;
    r->tokens_per_s = (double)r->tokens / med;
    r->bytes_per_s = (double)s->bytes / med;
    return 1;
}

typedef struct {
    int32_t batch;
    double texts_per_s, tokens_per_s;
    double p50, p90, p99, mean, max; /* per call, ms */
    int passes;
    double pass_s[64];
} encode_result;

typedef struct {
    int64_t tokens;  /* what the model saw, after truncation */
    int32_t truncated, max_tokens;
} encode_totals;

static int encode_pass(ember_model *m, const str_list *s, int32_t B, float *out, ember_text_stats *stats,
                       double *lat, size_t *n_lat, encode_totals *tot) {
    for (int32_t i = 0; i < s->n; i += B) {
        int32_t k = s->n - i < B ? s->n - i : B;
        double t = clock_now();
        ember_status st = ember_encode(m, (const char *const *)s->s + i, s->len + i, k, NULL, out, stats);
        t = clock_now() - t;
        if (st != EMBER_OK) {
            fprintf(stderr, "ember: error: texts %d-%d: %s\n", i + 1, i + k, ember_last_error());
            return 0;
        }
        if (lat) lat[(*n_lat)++] = t;
        if (tot) {
            for (int32_t j = 0; j < k; j++) {
                tot->tokens += stats[j].n_tokens;
                tot->truncated += stats[j].truncated != 0;
                if (stats[j].n_tokens > tot->max_tokens) tot->max_tokens = stats[j].n_tokens;
            }
        }
    }
    return 1;
}

static int measure_encode(ember_model *m, const str_list *s, int32_t B, int32_t dim, int runs, double seconds,
                          double warmup, encode_result *r, encode_totals *tot) {
    memset(r, 0, sizeof *r);
    r->batch = B;
    float *out = malloc((size_t)B * (size_t)dim * sizeof *out);
    ember_text_stats *stats = malloc((size_t)B * sizeof *stats);
    size_t calls = (size_t)((s->n + B - 1) / B), lat_cap = calls * 64, n_lat = 0;
    double *lat = malloc(lat_cap * sizeof *lat);
    int ok = out && stats && lat;
    if (!ok) fprintf(stderr, "ember: error: out of memory\n");
    /* warm-up: the first calls also fault in the workspace and fill caches */
    double t0 = clock_now();
    encode_totals first = {0};
    if (ok) ok = encode_pass(m, s, B, out, stats, NULL, NULL, &first);
    while (ok && clock_now() - t0 < warmup) ok = encode_pass(m, s, B, out, stats, NULL, NULL, NULL);
    double spent = 0;
    while (ok && r->passes < 64 && (r->passes < runs || spent < seconds)) {
        double t = clock_now();
        ok = encode_pass(m, s, B, out, stats, lat, &n_lat, NULL);
        t = clock_now() - t;
        r->pass_s[r->passes++] = t;
        spent += t;
    }
    if (ok) {
        double sorted[64];
        memcpy(sorted, r->pass_s, (size_t)r->passes * sizeof *sorted);
        double med = median_of(sorted, (size_t)r->passes);
        r->texts_per_s = s->n / med;
        r->tokens_per_s = (double)first.tokens / med;
        qsort(lat, n_lat, sizeof *lat, cmp_double);
        double sum = 0;
        for (size_t i = 0; i < n_lat; i++) sum += lat[i];
        r->p50 = percentile(lat, n_lat, 50) * 1e3;
        r->p90 = percentile(lat, n_lat, 90) * 1e3;
        r->p99 = percentile(lat, n_lat, 99) * 1e3;
        r->mean = n_lat ? sum / (double)n_lat * 1e3 : 0;
        r->max = n_lat ? lat[n_lat - 1] * 1e3 : 0;
        if (tot) *tot = first;
    }
    free(out);
    free(stats);
    free(lat);
    return ok;
}

/* ---- output --------------------------------------------------------------------------- */

static json_t *json_runs(const double *v, int n) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++) json_array_append_new(a, json_real(v[i]));
    return a;
}

static int parse_batches(const char *s, int32_t *out, int max) {
    int n = 0;
    const char *p = s;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 1 << 20 || n == max) return 0;
        out[n++] = (int32_t)v;
        p = end;
        if (*p == ',') p++;
        else if (*p) return 0;
    }
    return n;
}

static int parse_seconds(const char *s, const char *what, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || v < 0 || v > 86400) {
        fprintf(stderr, "ember: error: %s must be a number of seconds, got '%s'\n", what, s);
        return 0;
    }
    *out = v;
    return 1;
}

typedef struct {
    model_opts mo;
    const char *input, *workload, *json_path, *label;
    int32_t n_limit, runs, seed;
    int32_t batches[32];
    int n_batches, do_tokenize, do_encode, quiet;
    double seconds, warmup;
} bench_opts;

/* Parse argv; 0 to go on, -1 after --help, else the exit status. */
static int bench_parse(int argc, char **argv, bench_opts *b) {
    memset(b, 0, sizeof *b);
    model_opts_init(&b->mo);
    b->runs = 3;
    b->seed = 1;
    b->n_batches = 4;
    b->batches[0] = 1, b->batches[1] = 8, b->batches[2] = 32, b->batches[3] = 128;
    b->do_tokenize = b->do_encode = 1;
    b->seconds = 2;
    b->warmup = 0.5;
    static struct option opts[] = {{"input", required_argument, 0, 'i'},
                                   {"workload", required_argument, 0, 'w'},
                                   {"texts", required_argument, 0, 'n'},
                                   {"batch-sizes", required_argument, 0, 'b'},
                                   {"runs", required_argument, 0, 'r'},
                                   {"seconds", required_argument, 0, 's'},
                                   {"warmup", required_argument, 0, 'W'},
                                   {"no-tokenize", no_argument, 0, 'T'},
                                   {"tokenize-only", no_argument, 0, 'O'},
                                   {"seed", required_argument, 0, 'S'},
                                   {"label", required_argument, 0, 'L'},
                                   {"json", required_argument, 0, 'j'},
                                   {"quiet", no_argument, 0, 'q'},
                                   {"help", no_argument, 0, 'h'},
                                   MODEL_OPTIONS,
                                   {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "i:w:n:b:qhm:", opts, NULL)) != -1) {
        switch (c) {
        case 'i': b->input = optarg; break;
        case 'w': b->workload = optarg; break;
        case 'n':
            if (!parse_int(optarg, "--texts", 1, 1 << 30, &b->n_limit)) return 2;
            break;
        case 'b':
            if (!(b->n_batches = parse_batches(optarg, b->batches, 32)))
                die_usage("bench", "--batch-sizes must be a comma-separated list of positive integers, got '%s'",
                          optarg);
            break;
        case 'r':
            if (!parse_int(optarg, "--runs", 1, 64, &b->runs)) return 2;
            break;
        case 's':
            if (!parse_seconds(optarg, "--seconds", &b->seconds)) return 2;
            break;
        case 'W':
            if (!parse_seconds(optarg, "--warmup", &b->warmup)) return 2;
            break;
        case 'T': b->do_tokenize = 0; break;
        case 'O': b->do_encode = 0; break;
        case 'S':
            if (!parse_int(optarg, "--seed", 0, 1 << 30, &b->seed)) return 2;
            break;
        case 'L': b->label = optarg; break;
        case 'j': b->json_path = optarg; break;
        case 'q': b->quiet = 1; break;
        case 'h': fputs(usage, stdout); return -1;
        default:
            if (c == '?' || !model_opts_parse(&b->mo, c, optarg)) {
                fputs(usage, stderr);
                return 2;
            }
        }
    }
    if (optind < argc) die_usage("bench", "unexpected argument '%s'", argv[optind]);
    if (b->input && b->workload) die_usage("bench", "give --input or --workload, not both");
    if (!b->do_tokenize && !b->do_encode)
        die_usage("bench", "--no-tokenize and --tokenize-only leave nothing to measure");
    if (!b->input && !b->workload) b->workload = "mixed";
    length_dist probe;
    if (b->workload && !length_dist_parse(b->workload, &probe))
        die_usage("bench", "unknown workload '%s' (short, passages, long, mixed, len:N, uniform:A-B)", b->workload);
    return 0;
}

/* What one run measured, for the table and the JSON. */
typedef struct {
    machine_info mi;
    ember_model_info info;
    const char *workload;
    double t_load, rss_model, peak;
    tokenize_result tr;
    encode_result er[32];
    encode_totals tot;
} bench_run;

static void print_table(FILE *o, const bench_opts *b, const bench_run *r, const str_list *s) {
    const ember_model_info *info = &r->info;
    fprintf(o, "ember bench %s: %s on %s, %s\n", EMBER_VERSION, info->name, info->device_name,
            ember_dtype_str(info->dtype));
    fprintf(o, "machine:   %s, %d cores online, %s; GPU: %s; load average %.2f at start, %.2f at end\n", r->mi.cpu,
            r->mi.cores, r->mi.isa, r->mi.gpu, r->mi.load_start, r->mi.load_end);
    fprintf(o, "workload:  %s: %d texts, %.1f KB", r->workload, s->n, (double)s->bytes / 1024.0);
    if (b->do_encode)
        fprintf(o, ", %lld tokens as encoded (%.1f per text, longest %d, %d cut to %d)", (long long)r->tot.tokens,
                (double)r->tot.tokens / s->n, r->tot.max_tokens, r->tot.truncated, info->max_length);
    fputc('\n', o);
    fprintf(o, "memory:    model %.1f MB resident, peak %.1f MB (whole process); load %.2f s; "
               "%d tokens per forward pass at most\n",
            r->rss_model, r->peak, r->t_load, info->max_batch_tokens);
    if (b->do_tokenize)
        fprintf(o, "tokenize:  %.0f texts/s, %.0f tokens/s, %.1f MB/s (1 thread, no truncation, median of %d)\n",
                r->tr.texts_per_s, r->tr.tokens_per_s, r->tr.bytes_per_s / 1e6, r->tr.passes);
    if (b->do_encode) {
        fprintf(o, "\n%7s %10s %11s %9s %9s %9s %9s %6s\n", "batch", "texts/s", "tokens/s", "p50 ms", "p90 ms",
                "p99 ms", "max ms", "passes");
        for (int i = 0; i < b->n_batches; i++) {
            const encode_result *e = &r->er[i];
            fprintf(o, "%7d %10.1f %11.0f %9.2f %9.2f %9.2f %9.2f %6d\n", e->batch, e->texts_per_s, e->tokens_per_s,
                    e->p50, e->p90, e->p99, e->max, e->passes);
        }
        fprintf(o, "(latency: per ember_encode call of `batch` texts, tokenization included; "
                   "throughput: median pass)\n");
    }
}

static json_t *encode_json(const encode_result *e) {
    json_t *j = json_object();
    json_object_set_new(j, "batch", json_integer(e->batch));
    json_object_set_new(j, "texts_per_s", json_real(e->texts_per_s));
    json_object_set_new(j, "tokens_per_s", json_real(e->tokens_per_s));
    json_object_set_new(j, "latency_ms", json_pack("{s:f, s:f, s:f, s:f, s:f}", "p50", e->p50, "p90", e->p90, "p99",
                                                   e->p99, "mean", e->mean, "max", e->max));
    json_object_set_new(j, "pass_s", json_runs(e->pass_s, e->passes));
    return j;
}

static int write_json(const bench_opts *b, const bench_run *r, const str_list *s) {
    const machine_info *mi = &r->mi;
    json_t *root = json_object();
    json_object_set_new(root, "ember_version", json_string(EMBER_VERSION));
    json_object_set_new(root, "machine",
                        json_pack("{s:s, s:i, s:s, s:s, s:f, s:f}", "cpu", mi->cpu, "cores", mi->cores, "isa",
                                  mi->isa, "gpu", mi->gpu, "load_start", mi->load_start, "load_end", mi->load_end));
    json_object_set_new(root, "model",
                        json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:f}", "name", r->info.name, "dir",
                                  b->mo.model_dir, "device", r->info.device_name, "threads",
                                  b->mo.params.n_threads > 0 ? b->mo.params.n_threads : mi->cores, "max_batch_tokens",
                                  r->info.max_batch_tokens, "max_length", r->info.max_length, "load_s", r->t_load));
    json_t *jw = json_pack("{s:s, s:i, s:I}", "name", r->workload, "texts", s->n, "bytes", (json_int_t)s->bytes);
    if (b->do_encode) {
        json_object_set_new(jw, "tokens", json_integer(r->tot.tokens));
        json_object_set_new(jw, "max_tokens", json_integer(r->tot.max_tokens));
        json_object_set_new(jw, "truncated", json_integer(r->tot.truncated));
    }
    json_object_set_new(root, "workload", jw);
    if (b->do_tokenize) {
        json_t *jt = json_pack("{s:i, s:I, s:f, s:f, s:f}", "threads", 1, "tokens", (json_int_t)r->tr.tokens,
                               "texts_per_s", r->tr.texts_per_s, "tokens_per_s", r->tr.tokens_per_s, "bytes_per_s",
                               r->tr.bytes_per_s);
        json_object_set_new(jt, "pass_s", json_runs(r->tr.pass_s, r->tr.passes));
        json_object_set_new(root, "tokenize", jt);
    }
    json_t *je = json_array();
    for (int i = 0; b->do_encode && i < b->n_batches; i++) json_array_append_new(je, encode_json(&r->er[i]));
    json_object_set_new(root, "encode", je);
    json_object_set_new(root, "memory", json_pack("{s:f, s:f}", "model_rss_mb", r->rss_model, "peak_rss_mb", r->peak));
    int wrote;
    if (strcmp(b->json_path, "-") == 0) {
        wrote = json_dumpf(root, stdout, JSON_INDENT(2)) == 0;
        fputc('\n', stdout);
    } else {
        wrote = json_dump_file(root, b->json_path, JSON_INDENT(2)) == 0;
    }
    json_decref(root);
    if (!wrote) fprintf(stderr, "ember: error: %s: cannot write the JSON\n", b->json_path);
    return wrote;
}

int cmd_bench(int argc, char **argv) {
    bench_opts b;
    int rc = bench_parse(argc, argv, &b);
    if (rc) return rc < 0 ? 0 : rc;
    bench_run r;
    memset(&r, 0, sizeof r);
    machine_read(&r.mi);
    double rss_before = rss_mb();
    r.t_load = clock_now();
    ember_model *m = model_opts_load(&b.mo);
    if (!m) return 1;
    r.t_load = clock_now() - r.t_load;
    r.rss_model = rss_mb() - rss_before;
    ember_model_get_info(m, &r.info);

    str_list s = {0};
    int ok = 1;
    if (!b.input) {
        ok = synth_texts(&s, m, b.workload, b.n_limit > 0 ? b.n_limit : 512, (uint64_t)b.seed);
    } else if (str_list_read(&s, b.input, b.n_limit) != EMBER_OK) {
        cli_fail();
        ok = 0;
    }
    if (ok && s.n == 0) {
        fprintf(stderr, "ember: error: %s: no texts\n", b.input);
        ok = 0;
    }
    r.workload = b.label ? b.label : b.input ? b.input : b.workload;
    if (ok && b.do_tokenize) ok = measure_tokenize(m, &s, b.runs, b.seconds, b.warmup, &r.tr);
    for (int i = 0; ok && b.do_encode && i < b.n_batches; i++)
        ok = measure_encode(m, &s, b.batches[i], r.info.dim, b.runs, b.seconds, b.warmup, &r.er[i],
                            i == 0 ? &r.tot : NULL);
    if (ok) {
        r.mi.load_end = load_average();
        r.peak = peak_rss_mb();
        if (!b.quiet) print_table(b.json_path && strcmp(b.json_path, "-") == 0 ? stderr : stdout, &b, &r, &s);
        if (b.json_path) ok = write_json(&b, &r, &s);
    }
    str_list_free(&s);
    ember_model_free(m);
    return ok ? 0 : 1;
}
