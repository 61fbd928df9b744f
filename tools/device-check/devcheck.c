/* ember-devcheck: what tools/device-check.sh runs on a lent GPU machine,
 * through the public API only.
 *
 *   ember-devcheck embed MODEL --ids FILE --out FILE [--device D] [--dtype T]
 *                              [--pooling cls|mean|max|mean_sqrt_len] [--normalize 0|1]
 *       Encode the id sequences of FILE (one per line, space-separated) and
 *       write float32 little-endian: the pooled vectors (S, C), then every
 *       token's hidden state (T, C). For comparisons with PyTorch.
 *   ember-devcheck bench MODEL --texts F1[,F2...] --batches 32,128,... [--device D] [--dtype T]
 *                              [--threads N] [--seconds S] [--pooling P]
 *       Throughput of ember_encode on the texts of each file (one per line),
 *       N texts per call: one JSON line per (file, batch size). With
 *       --threads N, N threads each drive their own model (tokenizing in
 *       parallel, their GPU work overlapping on separate streams).
 *   ember-devcheck bench-ids MODEL --len L --count N [--device D] [--dtype T] [--seconds S]
 *       Throughput of the model alone (ember_encode_sequences on random ids,
 *       N sequences of exactly L tokens, no tokenization): one JSON line.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ember.h"

static void die(const char *fmt, const char *arg) {
    fprintf(stderr, "ember-devcheck: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n");
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct {
    const char *model, *ids, *out, *texts, *batches;
    ember_device device;
    int32_t device_index;
    ember_dtype dtype;
    ember_pooling pooling;
    ember_normalize normalize;
    int threads, len, count;
    double seconds;
    int32_t max_batch_tokens;
} options;

static void parse(options *o, int argc, char **argv) {
    memset(o, 0, sizeof *o);
    o->device = EMBER_DEVICE_CUDA;
    o->dtype = EMBER_DTYPE_FP16;
    o->threads = 1;
    o->seconds = 2.0;
    if (argc < 3) die("usage: ember-devcheck embed|bench|bench-ids MODEL [options] (see the source)%s", "");
    o->model = argv[2];
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) die("option %s needs a value", a);
        i++;
        if (!strcmp(a, "--ids")) o->ids = v;
        else if (!strcmp(a, "--out")) o->out = v;
        else if (!strcmp(a, "--texts")) o->texts = v;
        else if (!strcmp(a, "--batches")) o->batches = v;
        else if (!strcmp(a, "--threads")) o->threads = atoi(v);
        else if (!strcmp(a, "--len")) o->len = atoi(v);
        else if (!strcmp(a, "--count")) o->count = atoi(v);
        else if (!strcmp(a, "--seconds")) o->seconds = atof(v);
        else if (!strcmp(a, "--max-batch-tokens")) o->max_batch_tokens = atoi(v);
        else if (!strcmp(a, "--normalize")) o->normalize = atoi(v) ? EMBER_NORMALIZE_ON : EMBER_NORMALIZE_OFF;
        else if (!strcmp(a, "--device")) {
            if (ember_device_parse(v, &o->device, &o->device_index) != EMBER_OK) die("%s", ember_last_error());
        } else if (!strcmp(a, "--dtype")) {
            if (ember_dtype_parse(v, &o->dtype) != EMBER_OK) die("%s", ember_last_error());
        } else if (!strcmp(a, "--pooling")) {
            if (ember_pooling_parse(v, &o->pooling) != EMBER_OK) die("%s", ember_last_error());
        } else die("unknown option %s", a);
    }
    if (o->device == EMBER_DEVICE_CPU) o->dtype = EMBER_DTYPE_FP32;
}

static ember_model *load(const options *o) {
    ember_model_params p = ember_model_default_params();
    p.device = o->device;
    p.device_index = o->device_index;
    p.dtype = o->dtype;
    p.max_batch_tokens = o->max_batch_tokens;
    /* the EMBER_CUDA_* switches the device check sets */
    if (ember_tuning_from_env(&p.tuning) != EMBER_OK) die("%s", ember_last_error());
    ember_model *m;
    if (ember_model_load(o->model, &p, &m) != EMBER_OK) die("%s", ember_last_error());
    return m;
}

/* Lines of a file (without their newlines). */
static char **read_lines(const char *path, int32_t *n_out) {
    FILE *f = fopen(path, "r");
    if (!f) die("cannot open %s", path);
    int32_t n = 0, cap = 1024;
    char **lines = malloc((size_t)cap * sizeof *lines);
    char *line = NULL;
    size_t lcap = 0;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = '\0';
        if (n == cap) lines = realloc(lines, (size_t)(cap *= 2) * sizeof *lines);
        lines[n++] = strdup(line);
    }
    free(line);
    fclose(f);
    *n_out = n;
    return lines;
}

/* ---- embed ---------------------------------------------------------------------------- */

static int cmd_embed(const options *o) {
    if (!o->ids || !o->out) die("embed needs --ids and --out%s", "");
    int32_t S;
    char **lines = read_lines(o->ids, &S);
    ember_sequence *seqs = calloc((size_t)S, sizeof *seqs);
    int64_t T = 0;
    for (int32_t s = 0; s < S; s++) {
        int32_t cap = 16, n = 0;
        int32_t *ids = malloc((size_t)cap * sizeof *ids);
        char *p = lines[s], *end;
        for (;;) {
            long v = strtol(p, &end, 10);
            if (end == p) break;
            if (n == cap) ids = realloc(ids, (size_t)(cap *= 2) * sizeof *ids);
            ids[n++] = (int32_t)v;
            p = end;
        }
        seqs[s] = (ember_sequence){.ids = ids, .n = n};
        T += n;
    }
    ember_model *m = load(o);
    ember_model_info info;
    ember_model_get_info(m, &info);
    float *pooled = malloc((size_t)S * info.dim * sizeof *pooled);
    float *hidden = malloc((size_t)T * info.dim * sizeof *hidden);
    ember_encode_params p = ember_encode_default_params();
    p.pooling = o->pooling;
    p.normalize = o->normalize;
    p.truncate = 0;
    if (ember_encode_sequences(m, seqs, S, &p, pooled, hidden) != EMBER_OK) die("%s", ember_last_error());
    FILE *f = fopen(o->out, "wb");
    if (!f || fwrite(pooled, sizeof(float), (size_t)S * info.dim, f) != (size_t)S * info.dim ||
        fwrite(hidden, sizeof(float), (size_t)T * info.dim, f) != (size_t)T * info.dim || fclose(f))
        die("cannot write %s", o->out);
    fprintf(stderr, "ember-devcheck: %d sequences, %lld tokens on %s (%s) -> %s\n", S, (long long)T,
            info.device_name, ember_dtype_str(info.dtype), o->out);
    ember_model_free(m);
    return 0;
}

/* ---- bench ---------------------------------------------------------------------------------- */

typedef struct {
    ember_model *m;
    const char **texts;
    int32_t n, batch, dim;
    float *out;
    int failed;
} worker;

static void *work(void *arg) {
    worker *w = arg;
    for (int32_t i = 0; i < w->n && !w->failed; i += w->batch) {
        int32_t k = w->n - i < w->batch ? w->n - i : w->batch;
        if (ember_encode(w->m, w->texts + i, NULL, k, NULL, w->out, NULL) != EMBER_OK) {
            fprintf(stderr, "ember-devcheck: %s\n", ember_last_error());
            w->failed = 1;
        }
    }
    return NULL;
}

/* One pass over texts in calls of `batch`, split among the workers. */
static double run_pass(worker *ws, int threads, const char **texts, int32_t n, int32_t batch) {
    pthread_t tid[64];
    const int32_t per = (n + threads - 1) / threads;
    double t0 = now();
    for (int k = 0; k < threads; k++) {
        int32_t first = k * per < n ? k * per : n;
        int32_t cnt = first + per <= n ? per : n - first;
        ws[k].texts = texts + first;
        ws[k].n = cnt;
        ws[k].batch = batch;
        pthread_create(&tid[k], NULL, work, &ws[k]);
    }
    int failed = 0;
    for (int k = 0; k < threads; k++) {
        pthread_join(tid[k], NULL);
        failed |= ws[k].failed;
    }
    if (failed) die("encoding failed%s", "");
    return now() - t0;
}

static int cmd_bench(const options *o) {
    if (!o->texts || !o->batches) die("bench needs --texts and --batches%s", "");
    if (o->threads < 1 || o->threads > 64) die("--threads must be 1 to 64%s", "");
    worker ws[64];
    memset(ws, 0, sizeof ws);
    ember_model_info info;
    for (int k = 0; k < o->threads; k++) {
        ws[k].m = load(o);
        ember_model_get_info(ws[k].m, &info);
    }
    char *files = strdup(o->texts);
    for (char *file = strtok(files, ","); file; file = strtok(NULL, ",")) {
        int32_t n;
        char **lines = read_lines(file, &n);
        const char **texts = (const char **)lines;
        /* tokens as the model sees them ([CLS], [SEP], truncation) */
        int64_t tokens = 0;
        ember_tokenize_params tp = ember_tokenize_default_params();
        ember_token *tok = malloc((size_t)info.max_length * sizeof *tok);
        for (int32_t i = 0; i < n; i++) {
            int32_t cnt;
            if (ember_tokenize(ws[0].m, texts[i], -1, NULL, 0, &tp, tok, info.max_length, &cnt, NULL) != EMBER_OK)
                die("%s", ember_last_error());
            tokens += cnt;
        }
        free(tok);
        char *batches = strdup(o->batches), *save = NULL;
        for (char *b = strtok_r(batches, ",", &save); b; b = strtok_r(NULL, ",", &save)) {
            const int32_t batch = atoi(b);
            for (int k = 0; k < o->threads; k++) {
                free(ws[k].out);
                ws[k].out = malloc((size_t)batch * info.dim * sizeof(float));
            }
            run_pass(ws, o->threads, texts, n < batch * o->threads ? n : batch * o->threads, batch); /* warm up */
            int passes = 0;
            double elapsed = 0;
            while (elapsed < o->seconds || passes < 2) {
                elapsed += run_pass(ws, o->threads, texts, n, batch);
                passes++;
            }
            printf("{\"engine\": \"ember\", \"model\": \"%s\", \"device\": \"%s\", \"dtype\": \"%s\", "
                   "\"input\": \"%s\", "
                   "\"batch\": %d, \"threads\": %d, \"texts\": %d, \"tokens\": %lld, \"passes\": %d, "
                   "\"seconds\": %.4f, \"tokens_per_s\": %.1f, \"sentences_per_s\": %.1f}\n",
                   info.name, info.device_name, ember_dtype_str(info.dtype), file, batch, o->threads, n, (long long)tokens,
                   passes, elapsed, (double)tokens * passes / elapsed, (double)n * passes / elapsed);
            fflush(stdout);
        }
        free(batches);
        for (int32_t i = 0; i < n; i++) free(lines[i]);
        free(lines);
    }
    free(files);
    for (int k = 0; k < o->threads; k++) {
        free(ws[k].out);
        ember_model_free(ws[k].m);
    }
    return 0;
}

static int cmd_bench_ids(const options *o) {
    if (o->len < 1 || o->count < 1) die("bench-ids needs --len and --count%s", "");
    ember_model *m = load(o);
    ember_model_info info;
    ember_model_get_info(m, &info);
    if (o->len > info.max_length) die("--len is over the model's max_length%s", "");
    ember_sequence *seqs = calloc((size_t)o->count, sizeof *seqs);
    uint64_t state = 42;
    for (int s = 0; s < o->count; s++) {
        int32_t *ids = malloc((size_t)o->len * sizeof *ids);
        for (int k = 0; k < o->len; k++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            const int32_t lo = info.vocab_size > 2000 ? 1000 : 0; /* past [unused] and special entries */
            ids[k] = lo + (int32_t)((state >> 33) % (uint64_t)(info.vocab_size - lo));
        }
        ids[0] = 101; /* [CLS] ... [SEP] in BERT's uncased vocabulary */
        ids[o->len - 1] = 102;
        seqs[s] = (ember_sequence){.ids = ids, .n = o->len};
    }
    float *pooled = malloc((size_t)o->count * info.dim * sizeof *pooled);
    ember_encode_params p = ember_encode_default_params();
    p.pooling = o->pooling;
    if (ember_encode_sequences(m, seqs, o->count, &p, pooled, NULL) != EMBER_OK) die("%s", ember_last_error());
    int passes = 0;
    double elapsed = 0;
    while (elapsed < o->seconds || passes < 2) {
        double t0 = now();
        if (ember_encode_sequences(m, seqs, o->count, &p, pooled, NULL) != EMBER_OK) die("%s", ember_last_error());
        elapsed += now() - t0;
        passes++;
    }
    const double tokens = (double)o->len * o->count * passes;
    /* EMBER_DEVCHECK_ENGINE names a variant of the backend (its switches
     * are environment variables: EMBER_CUDA_ATTENTION, EMBER_CUDA_FFN_CHUNK) */
    const char *engine = getenv("EMBER_DEVCHECK_ENGINE");
    printf("{\"engine\": \"%s\", \"model\": \"%s\", \"device\": \"%s\", \"dtype\": \"%s\", \"input\": \"ids of %d "
           "tokens\", \"batch\": %d, \"threads\": 1, \"texts\": %d, \"tokens\": %lld, \"passes\": %d, \"seconds\": "
           "%.4f, \"tokens_per_s\": %.1f, \"sentences_per_s\": %.1f}\n",
           engine && *engine ? engine : "ember", info.name, info.device_name, ember_dtype_str(info.dtype), o->len, o->count, o->count,
           (long long)o->len * o->count, passes, elapsed, tokens / elapsed, (double)o->count * passes / elapsed);
    ember_model_free(m);
    return 0;
}

int main(int argc, char **argv) {
    options o;
    parse(&o, argc, argv);
    if (!strcmp(argv[1], "embed")) return cmd_embed(&o);
    if (!strcmp(argv[1], "bench")) return cmd_bench(&o);
    if (!strcmp(argv[1], "bench-ids")) return cmd_bench_ids(&o);
    die("unknown command %s", argv[1]);
    return 1;
}
