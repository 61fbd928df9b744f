#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "cli.h"
#include "model/safetensors.h"

static void log_to_stderr(ember_log_level level, const char *msg, void *user) {
    (void)user;
    static const char *names[] = {"debug", "info", "warning", "error"};
    fprintf(stderr, "ember: %s: %s\n", names[level], msg);
}

void model_opts_init(model_opts *o) {
    memset(o, 0, sizeof *o);
    o->params = ember_model_default_params();
    const char *env = getenv("EMBER_MODEL");
    o->model_dir = env && *env ? env : EMBER_DEFAULT_MODEL;
}

int parse_int(const char *s, const char *what, long lo, long hi, int32_t *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "ember: error: %s must be an integer in [%ld, %ld], got '%s'\n", what, lo, hi, s);
        return 0;
    }
    *out = (int32_t)v;
    return 1;
}

int model_opts_parse(model_opts *o, int id, const char *arg) {
    switch (id) {
    case 'm':
    case 1000: o->model_dir = arg; return 1;
    case 1001:
        if (strcmp(arg, "cpu") == 0) o->params.device = EMBER_DEVICE_CPU;
        else if (strcmp(arg, "auto") == 0) o->params.device = EMBER_DEVICE_AUTO;
        else if (strcmp(arg, "cuda") == 0) o->params.device = EMBER_DEVICE_CUDA;
        else if (strncmp(arg, "cuda:", 5) == 0) {
            o->params.device = EMBER_DEVICE_CUDA;
            return parse_int(arg + 5, "--device cuda:N", 0, 1023, &o->params.device_index);
        } else {
            fprintf(stderr, "ember: error: --device must be cpu, cuda, cuda:N or auto, got '%s'\n", arg);
            return 0;
        }
        return 1;
    case 1002:
        if (strcmp(arg, "fp32") == 0) o->params.dtype = EMBER_DTYPE_FP32;
        else if (strcmp(arg, "fp16") == 0) o->params.dtype = EMBER_DTYPE_FP16;
        else if (strcmp(arg, "bf16") == 0) o->params.dtype = EMBER_DTYPE_BF16;
        else {
            fprintf(stderr, "ember: error: --dtype must be fp32, fp16 or bf16, got '%s'\n", arg);
            return 0;
        }
        return 1;
    case 1003: return parse_int(arg, "--threads", 1, 4096, &o->params.n_threads);
    case 1004: return parse_int(arg, "--max-batch-tokens", 1, 1 << 24, &o->params.max_batch_tokens);
    case 1005: return parse_int(arg, "--max-length", 3, 1 << 20, &o->params.max_length);
    case 1006: o->verbose = 1; return 1;
    case 1007: o->params.revision = arg; return 1;
    }
    return 0;
}

ember_model *model_opts_load(const model_opts *o) {
    ember_log_set(log_to_stderr, NULL);
    if (!o->verbose) ember_log_set(NULL, NULL);
    ember_model *m = NULL;
    if (!pull_if_missing(o->model_dir, o->params.revision)) return NULL;
    ember_status st = ember_model_load(o->model_dir, &o->params, &m);
    if (st != EMBER_OK) {
        fprintf(stderr, "ember: error: cannot load model: %s\n", ember_last_error());
        if (st == EMBER_ERR_IO && strcmp(o->model_dir, EMBER_DEFAULT_MODEL) == 0)
            fprintf(stderr, "ember: hint: fetch the default model with weights/fetch.sh\n");
        return NULL;
    }
    return m;
}

void die_usage(const char *cmd, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "ember %s: error: ", cmd);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n(see 'ember %s --help')\n", cmd);
    va_end(ap);
    exit(2);
}

/* ---- input ------------------------------------------------------------------ */

int line_reader_open(line_reader *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->path = path;
    gzFile gz;
    if (strcmp(path, "-") == 0) {
        r->path = "<stdin>";
        gz = gzdopen(0, "rb");
    } else {
        FILE *probe = fopen(path, "rb");
        if (!probe) {
            fprintf(stderr, "ember: error: %s: cannot open: %s\n", path, strerror(errno));
            return 0;
        }
        fclose(probe);
        gz = gzopen(path, "rb");
    }
    if (!gz) {
        fprintf(stderr, "ember: error: %s: cannot open\n", r->path);
        return 0;
    }
    gzbuffer(gz, 1 << 17);
    r->gz = gz;
    r->chunk = malloc(1 << 16);
    if (!r->chunk) {
        fprintf(stderr, "ember: error: out of memory\n");
        gzclose(gz);
        return 0;
    }
    return 1;
}

ptrdiff_t line_reader_next(line_reader *r, char **line) {
    size_t n = 0;
    int any = 0, newline = 0;
    while (!newline) {
        if (r->pos == r->len) {
            if (r->eof) break;
            int got = gzread(r->gz, r->chunk, 1 << 16);
            if (got < 0) {
                int err;
                fprintf(stderr, "ember: error: %s: read error at line %ld: %s\n", r->path, r->line_no + 1,
                        gzerror(r->gz, &err));
                return -2;
            }
            if (got == 0) {
                r->eof = 1;
                break;
            }
            r->len = (size_t)got;
            r->pos = 0;
        }
        any = 1;
        char *start = r->chunk + r->pos, *nl = memchr(start, '\n', r->len - r->pos);
        size_t take = nl ? (size_t)(nl - start) : r->len - r->pos;
        if (n + take + 1 > r->cap) {
            size_t cap = r->cap ? r->cap : 1 << 12;
            while (cap < n + take + 1) cap *= 2;
            char *b = realloc(r->buf, cap);
            if (!b) {
                fprintf(stderr, "ember: error: %s: out of memory at line %ld\n", r->path, r->line_no + 1);
                return -2;
            }
            r->buf = b;
            r->cap = cap;
        }
        memcpy(r->buf + n, start, take);
        n += take;
        r->pos += take + (nl ? 1 : 0);
        newline = nl != NULL;
    }
    if (!any) return -1;
    r->line_no++;
    if (n > 0 && r->buf[n - 1] == '\r') n--;
    r->buf[n] = '\0';
    *line = r->buf;
    return (ptrdiff_t)n;
}

void line_reader_close(line_reader *r) {
    if (r->gz) gzclose(r->gz);
    free(r->buf);
    free(r->chunk);
    memset(r, 0, sizeof *r);
}

char *jsonl_field(const char *line, size_t len, const char *field, const char *path, long line_no, size_t *out_len) {
    json_error_t err;
    json_t *root = json_loadb(line, len, 0, &err);
    if (!root) {
        fprintf(stderr, "ember: error: %s:%ld: malformed JSON at column %d: %s\n", path, line_no, err.column,
                err.text);
        return NULL;
    }
    json_t *v = json_is_object(root) ? json_object_get(root, field) : NULL;
    if (!json_is_string(v)) {
        fprintf(stderr, "ember: error: %s:%ld: %s\n", path, line_no,
                !json_is_object(root) ? "not a JSON object"
                : v                   ? "the text field is not a string"
                                      : "the text field is missing");
        fprintf(stderr, "ember: hint: the field read is '%s' (set it with --field)\n", field);
        json_decref(root);
        return NULL;
    }
    size_t n = json_string_length(v);
    char *s = malloc(n + 1);
    if (s) {
        memcpy(s, json_string_value(v), n);
        s[n] = '\0';
        *out_len = n;
    }
    json_decref(root);
    return s;
}

/* ---- output ---------------------------------------------------------------------- */

#define NPY_HEADER 128

static int npy_header(npy_writer *w) {
    char h[NPY_HEADER];
    memset(h, ' ', sizeof h);
    memcpy(h, "\x93NUMPY\x01\x00", 8);
    h[8] = (char)(NPY_HEADER - 10);
    h[9] = 0;
    char dict[NPY_HEADER];
    int n = snprintf(dict, sizeof dict, "{'descr': '<%s', 'fortran_order': False, 'shape': (%lld, %d), }",
                     w->fp16 ? "f2" : "f4", (long long)w->rows, w->dim);
    if (n < 0 || n > NPY_HEADER - 11) return 0;
    memcpy(h + 10, dict, (size_t)n);
    h[NPY_HEADER - 1] = '\n';
    return fwrite(h, 1, sizeof h, w->f) == sizeof h;
}

int npy_open(npy_writer *w, const char *path, int32_t dim, int fp16) {
    memset(w, 0, sizeof *w);
    w->path = path;
    w->dim = dim;
    w->fp16 = fp16;
    w->f = fopen(path, "wb");
    if (!w->f) {
        fprintf(stderr, "ember: error: %s: cannot create: %s\n", path, strerror(errno));
        return 0;
    }
    if (!npy_header(w)) {
        fprintf(stderr, "ember: error: %s: write failed\n", path);
        fclose(w->f);
        return 0;
    }
    return 1;
}

int npy_write(npy_writer *w, const float *rows, int64_t n) {
    size_t count = (size_t)n * (size_t)w->dim;
    if (w->fp16) {
        uint16_t buf[4096];
        for (size_t i = 0; i < count;) {
            size_t k = count - i < 4096 ? count - i : 4096;
            for (size_t j = 0; j < k; j++) buf[j] = f16_from_f32(rows[i + j]);
            if (fwrite(buf, 2, k, w->f) != k) goto fail;
            i += k;
        }
    } else if (fwrite(rows, sizeof(float), count, w->f) != count) {
        goto fail;
    }
    w->rows += n;
    return 1;
fail:
    fprintf(stderr, "ember: error: %s: write failed: %s\n", w->path, strerror(errno));
    return 0;
}

int npy_close(npy_writer *w) {
    int ok = fseek(w->f, 0, SEEK_SET) == 0 && npy_header(w);
    ok = (fclose(w->f) == 0) && ok;
    if (!ok) fprintf(stderr, "ember: error: %s: could not finish the file: %s\n", w->path, strerror(errno));
    return ok;
}

void json_write_string(FILE *f, const char *s, size_t len) {
    json_t *j = json_stringn_nocheck(s, len);
    json_dumpf(j, f, JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    json_decref(j);
}

double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}
