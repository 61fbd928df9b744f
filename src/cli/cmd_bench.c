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

typedef struct {
    char **texts;
    ptrdiff_t *lens;
    int32_t n, cap;
    size_t bytes;
} text_set;

static int texts_push(text_set *s, const char *t, size_t len) {
    if (s->n == s->cap) {
        int32_t cap = s->cap ? s->cap * 2 : 1024;
        char **nt = realloc(s->texts, (size_t)cap * sizeof *nt);
        if (nt) s->texts = nt;
        ptrdiff_t *nl = realloc(s->lens, (size_t)cap * sizeof *nl);
        if (nl) s->lens = nl;
        if (!nt || !nl) return 0;
        s->cap = cap;
    }
    char *c = malloc(len + 1);
    if (!c) return 0;
    memcpy(c, t, len);
    c[len] = '\0';
    s->texts[s->n] = c;
    s->lens[s->n] = (ptrdiff_t)len;
    s->n++;
    s->bytes += len;
    return 1;
}

static void texts_free(text_set *s) {
    for (int32_t i = 0; i < s->n; i++) free(s->texts[i]);
    free(s->texts);
    free(s->lens);
    memset(s, 0, sizeof *s);
}

static int texts_read(text_set *s, const char *path, int32_t limit) {
    line_reader r;
    if (!line_reader_open(&r, path)) return 0;
    char *line;
    ptrdiff_t len = 0;
    while ((limit <= 0 || s->n < limit) && (len = line_reader_next(&r, &line)) >= 0) {
        if (!texts_push(s, line, (size_t)len)) {
            fprintf(stderr, "ember: error: out of memory reading %s\n", path);
            line_reader_close(&r);
            return 0;
        }
    }
    int ok = len != -2;
    line_reader_close(&r);
    if (ok && s->n == 0) {
        fprintf(stderr, "ember: error: %s: no texts\n", path);
        ok = 0;
    }
    return ok;
}

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
static int synth_texts(text_set *s, ember_model *m, const char *name, int32_t n, uint64_t seed) {
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
        if (ok) ok = texts_push(s, buf ? buf : "", used);
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
static int tokenize_pass(ember_model *m, const text_set *s, ember_token **buf, int32_t *cap, int64_t *tokens) {
    ember_tokenize_params tp = ember_tokenize_default_params();
    tp.truncate = 0;
    int64_t total = 0;
    for (int32_t i = 0; i < s->n; i++) {
        int32_t n;
        ember_status st;
        while ((st = ember_tokenize(m, s->texts[i], s->lens[i], NULL, 0, &tp, *buf, *cap, &n, NULL)) ==
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

static int measure_tokenize(ember_model *m, const text_set *s, int runs, double seconds, double warmup,
                            tokenize_result *r) {
    memset(r, 0, sizeof *r);
    ember_token *buf = NULL;
    int32_t cap = 0;
    int ok = 1;
    double t0 = now_seconds();
    do ok = tokenize_pass(m, s, &buf, &cap, &r->tokens);
    while (ok && now_seconds() - t0 < warmup);
    double spent = 0;
    while (ok && r->passes < 64 && (r->passes < runs || spent < seconds)) {
        double t = now_seconds();
        ok = tokenize_pass(m, s, &buf, &cap, &r->tokens);
        t = now_seconds() - t;
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

static int encode_pass(ember_model *m, const text_set *s, int32_t B, float *out, ember_text_stats *stats,
                       double *lat, size_t *n_lat, encode_totals *tot) {
    for (int32_t i = 0; i < s->n; i += B) {
        int32_t k = s->n - i < B ? s->n - i : B;
        double t = now_seconds();
        ember_status st = ember_encode(m, (const char *const *)s->texts + i, s->lens + i, k, NULL, out, stats);
        t = now_seconds() - t;
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

static int measure_encode(ember_model *m, const text_set *s, int32_t B, int32_t dim, int runs, double seconds,
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
    double t0 = now_seconds();
    encode_totals first = {0};
    if (ok) ok = encode_pass(m, s, B, out, stats, NULL, NULL, &first);
    while (ok && now_seconds() - t0 < warmup) ok = encode_pass(m, s, B, out, stats, NULL, NULL, NULL);
    double spent = 0;
    while (ok && r->passes < 64 && (r->passes < runs || spent < seconds)) {
        double t = now_seconds();
        ok = encode_pass(m, s, B, out, stats, lat, &n_lat, NULL);
        t = now_seconds() - t;
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

int cmd_bench(int argc, char **argv) {
    model_opts mo;
    model_opts_init(&mo);
    const char *input = NULL, *workload = NULL, *json_path = NULL, *label = NULL;
    int32_t n_limit = 0, runs = 3, seed = 1;
    int32_t batches[32] = {1, 8, 32, 128};
    int n_batches = 4, do_tokenize = 1, do_encode = 1, quiet = 0;
    double seconds = 2, warmup = 0.5;
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
        case 'i': input = optarg; break;
        case 'w': workload = optarg; break;
        case 'n':
            if (!parse_int(optarg, "--texts", 1, 1 << 30, &n_limit)) return 2;
            break;
        case 'b':
            if (!(n_batches = parse_batches(optarg, batches, 32)))
                die_usage("bench", "--batch-sizes must be a comma-separated list of positive integers, got '%s'",
                          optarg);
            break;
        case 'r':
            if (!parse_int(optarg, "--runs", 1, 64, &runs)) return 2;
            break;
        case 's':
            if (!parse_seconds(optarg, "--seconds", &seconds)) return 2;
            break;
        case 'W':
            if (!parse_seconds(optarg, "--warmup", &warmup)) return 2;
            break;
        case 'T': do_tokenize = 0; break;
        case 'O': do_encode = 0; break;
        case 'S':
            if (!parse_int(optarg, "--seed", 0, 1 << 30, &seed)) return 2;
            break;
        case 'L': label = optarg; break;
        case 'j': json_path = optarg; break;
        case 'q': quiet = 1; break;
        case 'h': fputs(usage, stdout); return 0;
        default:
            if (c == '?' || !model_opts_parse(&mo, c, optarg)) {
                fputs(usage, stderr);
                return 2;
            }
        }
    }
    if (optind < argc) die_usage("bench", "unexpected argument '%s'", argv[optind]);
    if (input && workload) die_usage("bench", "give --input or --workload, not both");
    if (!do_tokenize && !do_encode) die_usage("bench", "--no-tokenize and --tokenize-only leave nothing to measure");
    if (!input && !workload) workload = "mixed";
    length_dist probe;
    if (workload && !length_dist_parse(workload, &probe))
        die_usage("bench", "unknown workload '%s' (short, passages, long, mixed, len:N, uniform:A-B)", workload);

    machine_info mi;
    machine_read(&mi);
    double rss_before = rss_mb();
    double t_load = now_seconds();
    ember_model *m = model_opts_load(&mo);
    if (!m) return 1;
    t_load = now_seconds() - t_load;
    double rss_model = rss_mb() - rss_before;
    ember_model_info info;
    ember_model_get_info(m, &info);

    text_set s = {0};
    int ok = input ? texts_read(&s, input, n_limit)
                   : synth_texts(&s, m, workload, n_limit > 0 ? n_limit : 512, (uint64_t)seed);
    if (!ok) {
        texts_free(&s);
        ember_model_free(m);
        return 1;
    }
    const char *wl_name = label ? label : input ? input : workload;

    tokenize_result tr;
    if (do_tokenize && !(ok = measure_tokenize(m, &s, runs, seconds, warmup, &tr))) goto done;
    encode_result er[32];
    encode_totals tot = {0};
    for (int b = 0; do_encode && b < n_batches && ok; b++)
        ok = measure_encode(m, &s, batches[b], info.dim, runs, seconds, warmup, &er[b], b == 0 ? &tot : NULL);
    if (!ok) goto done;
    mi.load_end = load_average();
    double peak = peak_rss_mb();

    if (!quiet) {
        FILE *o = json_path && strcmp(json_path, "-") == 0 ? stderr : stdout;
        fprintf(o, "ember bench %s: %s on %s, %s\n", EMBER_VERSION, info.name, info.device_name,
                ember_dtype_str(info.dtype));
        fprintf(o, "machine:   %s, %d cores online, %s; GPU: %s; load average %.2f at start, %.2f at end\n", mi.cpu,
                mi.cores, mi.isa, mi.gpu, mi.load_start, mi.load_end);
        fprintf(o, "workload:  %s: %d texts, %.1f KB", wl_name, s.n, (double)s.bytes / 1024.0);
        if (do_encode)
            fprintf(o, ", %lld tokens as encoded (%.1f per text, longest %d, %d cut to %d)",
                    (long long)tot.tokens, (double)tot.tokens / s.n, tot.max_tokens, tot.truncated, info.max_length);
        fputc('\n', o);
        fprintf(o, "memory:    model %.1f MB resident, peak %.1f MB (whole process); load %.2f s; "
                   "%d tokens per forward pass at most\n",
                rss_model, peak, t_load, info.max_batch_tokens);
        if (do_tokenize)
            fprintf(o, "tokenize:  %.0f texts/s, %.0f tokens/s, %.1f MB/s (1 thread, no truncation, median of %d)\n",
                    tr.texts_per_s, tr.tokens_per_s, tr.bytes_per_s / 1e6, tr.passes);
        if (do_encode) {
            fprintf(o, "\n%7s %10s %11s %9s %9s %9s %9s %6s\n", "batch", "texts/s", "tokens/s", "p50 ms", "p90 ms",
                    "p99 ms", "max ms", "passes");
            for (int b = 0; b < n_batches; b++)
                fprintf(o, "%7d %10.1f %11.0f %9.2f %9.2f %9.2f %9.2f %6d\n", er[b].batch, er[b].texts_per_s,
                        er[b].tokens_per_s, er[b].p50, er[b].p90, er[b].p99, er[b].max, er[b].passes);
            fprintf(o, "(latency: per ember_encode call of `batch` texts, tokenization included; "
                       "throughput: median pass)\n");
        }
    }
    if (json_path) {
        json_t *root = json_object();
        json_object_set_new(root, "ember_version", json_string(EMBER_VERSION));
        json_t *jm = json_object();
        json_object_set_new(jm, "cpu", json_string(mi.cpu));
        json_object_set_new(jm, "cores", json_integer(mi.cores));
        json_object_set_new(jm, "isa", json_string(mi.isa));
        json_object_set_new(jm, "gpu", json_string(mi.gpu));
        json_object_set_new(jm, "load_start", json_real(mi.load_start));
        json_object_set_new(jm, "load_end", json_real(mi.load_end));
        json_object_set_new(root, "machine", jm);
        json_t *jmod = json_object();
        json_object_set_new(jmod, "name", json_string(info.name));
        json_object_set_new(jmod, "dir", json_string(mo.model_dir));
        json_object_set_new(jmod, "device", json_string(info.device_name));
        json_object_set_new(jmod, "threads", json_integer(mo.params.n_threads > 0 ? mo.params.n_threads : mi.cores));
        json_object_set_new(jmod, "max_batch_tokens", json_integer(info.max_batch_tokens));
        json_object_set_new(jmod, "max_length", json_integer(info.max_length));
        json_object_set_new(jmod, "load_s", json_real(t_load));
        json_object_set_new(root, "model", jmod);
        json_t *jw = json_object();
        json_object_set_new(jw, "name", json_string(wl_name));
        json_object_set_new(jw, "texts", json_integer(s.n));
        json_object_set_new(jw, "bytes", json_integer((json_int_t)s.bytes));
        if (do_encode) {
            json_object_set_new(jw, "tokens", json_integer(tot.tokens));
            json_object_set_new(jw, "max_tokens", json_integer(tot.max_tokens));
            json_object_set_new(jw, "truncated", json_integer(tot.truncated));
        }
        json_object_set_new(root, "workload", jw);
        if (do_tokenize) {
            json_t *jt = json_object();
            json_object_set_new(jt, "threads", json_integer(1));
            json_object_set_new(jt, "tokens", json_integer(tr.tokens));
            json_object_set_new(jt, "texts_per_s", json_real(tr.texts_per_s));
            json_object_set_new(jt, "tokens_per_s", json_real(tr.tokens_per_s));
            json_object_set_new(jt, "bytes_per_s", json_real(tr.bytes_per_s));
            json_object_set_new(jt, "pass_s", json_runs(tr.pass_s, tr.passes));
            json_object_set_new(root, "tokenize", jt);
        }
        json_t *je = json_array();
        for (int b = 0; do_encode && b < n_batches; b++) {
            json_t *e = json_object();
            json_object_set_new(e, "batch", json_integer(er[b].batch));
            json_object_set_new(e, "texts_per_s", json_real(er[b].texts_per_s));
            json_object_set_new(e, "tokens_per_s", json_real(er[b].tokens_per_s));
            json_t *jl = json_object();
            json_object_set_new(jl, "p50", json_real(er[b].p50));
            json_object_set_new(jl, "p90", json_real(er[b].p90));
            json_object_set_new(jl, "p99", json_real(er[b].p99));
            json_object_set_new(jl, "mean", json_real(er[b].mean));
            json_object_set_new(jl, "max", json_real(er[b].max));
            json_object_set_new(e, "latency_ms", jl);
            json_object_set_new(e, "pass_s", json_runs(er[b].pass_s, er[b].passes));
            json_array_append_new(je, e);
        }
        json_object_set_new(root, "encode", je);
        json_t *jmem = json_object();
        json_object_set_new(jmem, "model_rss_mb", json_real(rss_model));
        json_object_set_new(jmem, "peak_rss_mb", json_real(peak));
        json_object_set_new(root, "memory", jmem);
        int wrote;
        if (strcmp(json_path, "-") == 0) {
            wrote = json_dumpf(root, stdout, JSON_INDENT(2)) == 0;
            fputc('\n', stdout);
        } else {
            wrote = json_dump_file(root, json_path, JSON_INDENT(2)) == 0;
        }
        json_decref(root);
        if (!wrote) {
            fprintf(stderr, "ember: error: %s: cannot write the JSON\n", json_path);
            ok = 0;
        }
    }
done:
    texts_free(&s);
    ember_model_free(m);
    return ok ? 0 : 1;
}
