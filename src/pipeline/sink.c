/* The output of a streaming run: stdout, one file, or shards plus a
 * manifest (see sink.h). Errors go to ember_fail; notes to the run's log. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/error.h"
#include "common/fileio.h"
#include "common/half.h"
#include "common/jsonl.h"
#include "common/npy.h"
#include "common/quantize.h"
#include "manifest.h"
#include "sink.h"

struct sink {
    sink_opts o;
    int32_t dim;     /* of the rows coming in (the model's) */
    int32_t out_dim; /* of the rows stored (o.dimensions, or dim) */
    float *ranges;   /* (2, out_dim) for int8 / uint8, once known */
    float *rowbuf;   /* a window's rows cut to out_dim */
    void *qbuf;      /* ... and in the stored precision */
    size_t rowbuf_rows;
    int to_stdout;
    char path[4096];    /* the file, or the shard directory */
    char target[4200];  /* the file being written, once complete */
    char partial[4200]; /* ... and while it is written */
    int open;           /* a file is being written */
    npy_writer npy;
    FILE *jf;
    int64_t cur_rows; /* rows in the open file */
    shard_rec *shards;
    int32_t n_shards, cap_shards;
    ember_embed_totals totals; /* every row written, committed or not */
    uint32_t in_crc;    /* the input hash after the last row written */
    int64_t in_bytes;
    int64_t resume_rows; /* rows the earlier run had committed */
};


/* Record an error for ember_last_error(); returns 0, the sink's failure. */
static int sink_fail(ember_status st, const char *fmt, ...) EMBER_PRINTF(2, 3);
static int sink_fail(ember_status st, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    ember_fail(st, "%s", msg);
    return 0;
}

/* A note for the run's log (its callback, else the library's). */
static void sink_note(const sink *s, const char *fmt, ...) EMBER_PRINTF(2, 3);
static void sink_note(const sink *s, const char *fmt, ...) {
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (s->o.log) s->o.log(EMBER_LOG_WARN, msg, s->o.log_user);
    else ember_log(EMBER_LOG_WARN, "%s", msg);
}

static void dir_file(char *out, size_t cap, const char *dir, const char *name) {
    snprintf(out, cap, "%s/%s", dir, name);
}

/* ---- the manifest --------------------------------------------------------------- */

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static int manifest_write(const sink *s, int complete) {
    const sink_identity *id = &s->o.id;
    json_t *shards = json_array();
    for (int32_t i = 0; i < s->n_shards; i++) {
        const shard_rec *r = &s->shards[i];
        json_array_append_new(shards, json_pack("{s:s, s:I, s:I, s:I, s:I, s:I, s:o}", "file", r->file, "rows",
                                                (json_int_t)r->rows, "bytes", (json_int_t)r->bytes, "crc32",
                                                (json_int_t)r->crc, "input_bytes", (json_int_t)r->in_bytes,
                                                "input_crc32", (json_int_t)r->in_crc, "totals",
                                                totals_json(&r->totals)));
    }
    json_t *root = json_pack(
        "{s:i, s:b, s:{s:s, s:I, s:I, s:o}, s:{s:s, s:s, s:i, s:i, s:I}, s:{s:s, s:I, s:s, s:b, s:b, s:s, s:s}, s:o}",
        "ember_embed_manifest", MANIFEST_VERSION, "complete", complete, "input", "path", id->input_path, "size",
        (json_int_t)id->input_size, "mtime", (json_int_t)id->input_mtime, "jsonl_field", str_or_null(id->jsonl_field),
        "model", "name", id->model_name, "dir", id->model_dir, "dim", id->dim, "max_length", id->max_length,
        "weights_bytes", (json_int_t)id->weights_bytes, "output", "format", output_format_name(s->o.format),
        "shard_rows", (json_int_t)s->o.shard_rows, "pooling", id->pooling, "normalize", id->normalize, "truncate",
        id->truncate, "device", id->device, "dtype", id->dtype, "shards", shards);
    if (!root) {
        return sink_fail(EMBER_ERR_OUT_OF_MEMORY, "%s: cannot build the manifest", s->path);
    }
    json_object_set_new(root, "batching",
                        json_pack("{s:i, s:i, s:i}", "window", id->window, "max_batch_tokens", id->token_budget,
                                  "batch", id->batch_rows));
    json_t *out = json_object_get(root, "output");
    json_object_set_new(out, "precision", json_string(ember_precision_str(s->o.precision)));
    json_object_set_new(out, "dimensions", json_integer(s->out_dim));
    json_object_set_new(out, "prompt", json_string(id->prompt ? id->prompt : ""));
    if (s->ranges) json_object_set_new(out, "ranges", ranges_json(s->ranges, s->out_dim));
    if (complete) json_object_set_new(root, "totals", totals_json(&s->totals));
    char tmp[4200], final[4200];
    dir_file(final, sizeof final, s->path, MANIFEST_NAME);
    snprintf(tmp, sizeof tmp, "%s.partial", final);
    int ok = json_dump_file(root, tmp, JSON_INDENT(1)) == 0;
    json_decref(root);
    int64_t bytes;
    uint32_t crc;
    ok = ok && file_sync_crc(tmp, &bytes, &crc) && rename(tmp, final) == 0 && dir_sync(s->path);
    if (!ok) return sink_fail(EMBER_ERR_IO, "%s: cannot write: %s", final, strerror(errno));
    return 1;
}

static int json_int_at(json_t *obj, const char *key, int64_t *out) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) return 0;
    *out = (int64_t)json_integer_value(v);
    return 1;
}

static int shard_push(sink *s, const shard_rec *r) {
    if (s->n_shards == s->cap_shards) {
        int32_t cap = s->cap_shards ? 2 * s->cap_shards : 64;
        shard_rec *n = realloc(s->shards, (size_t)cap * sizeof *n);
        if (!n) {
            return sink_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory for %d shard records", cap);
        }
        s->shards = n;
        s->cap_shards = cap;
    }
    s->shards[s->n_shards++] = *r;
    return 1;
}

/* What differs from the earlier run without changing the output: notes. */
static void identity_notes(const sink *s, json_t *root) {
    const sink_identity *id = &s->o.id;
    json_t *in = json_object_get(root, "input");
    json_t *batching = json_object_get(root, "batching");
    int64_t ow, ot, ob;
    if (!id->batch_invariant && json_int_at(batching, "window", &ow) &&
        json_int_at(batching, "max_batch_tokens", &ot) && json_int_at(batching, "batch", &ob) &&
        (ow != id->window || ot != id->token_budget || ob != id->batch_rows))
        sink_note(s,
                  "note: the first run batched with --window %lld --max-batch-tokens %lld --batch %lld, this one "
                  "with %d, %d, %d: on this backend a text's vector may differ in the last bits with its batch",
                  (long long)ow, (long long)ot, (long long)ob, id->window, id->token_budget, id->batch_rows);
    int64_t old_mtime;
    if (id->input_mtime >= 0 && json_int_at(in, "mtime", &old_mtime) && old_mtime >= 0 && old_mtime != id->input_mtime)
        sink_note(s,
                  "note: %s was modified since the first run; its lines already embedded are checked against their "
                  "recorded crc32",
                  id->input_path);
}

/* Compare what the earlier run recorded with this run; 0 (printed) on a
 * difference that changes the output. */
static int identity_check(const sink *s, json_t *root, const char *mpath) {
    const sink_identity *id = &s->o.id;
    json_t *in = json_object_get(root, "input"), *model = json_object_get(root, "model"),
           *out = json_object_get(root, "output");
    if (!json_is_object(in) || !json_is_object(model) || !json_is_object(out)) {
        return sink_fail(EMBER_ERR_FORMAT, "%s: not an ember embed manifest (input, model or output missing)",
                         mpath);
    }
    char was[256], now[256];
    const char *what = NULL;
#define CHECK_STR(obj, key, value, name)                                                                            \
    if (!what) {                                                                                                    \
        const char *old_ = json_string_value(json_object_get(obj, key));                                            \
        if (!old_ || strcmp(old_, value) != 0) {                                                                    \
            what = name;                                                                                            \
            snprintf(was, sizeof was, "%s", old_ ? old_ : "(none)");                                                \
            snprintf(now, sizeof now, "%s", value);                                                                 \
        }                                                                                                           \
    }
#define CHECK_INT(obj, key, value, name)                                                                            \
    if (!what) {                                                                                                    \
        int64_t old_;                                                                                               \
        json_t *v_ = json_object_get(obj, key);                                                                     \
        if (json_is_boolean(v_)) old_ = json_is_true(v_);                                                           \
        else if (!json_int_at(obj, key, &old_)) old_ = INT64_MIN;                                                   \
        if (old_ != (int64_t)(value)) {                                                                             \
            what = name;                                                                                            \
            snprintf(was, sizeof was, "%lld", (long long)old_);                                                     \
            snprintf(now, sizeof now, "%lld", (long long)(value));                                                  \
        }                                                                                                           \
    }
    CHECK_STR(model, "name", id->model_name, "the model (--model)");
    CHECK_INT(model, "dim", id->dim, "the model's dimension");
    CHECK_INT(model, "weights_bytes", id->weights_bytes, "the model's weights (model.safetensors size)");
    CHECK_INT(model, "max_length", id->max_length, "the maximum length (--max-length)");
    CHECK_STR(out, "format", output_format_name(s->o.format), "the output format (--format)");
    CHECK_INT(out, "shard_rows", s->o.shard_rows, "the shard size (--shard-rows)");
    CHECK_STR(out, "pooling", id->pooling, "the pooling (--pooling)");
    CHECK_INT(out, "normalize", id->normalize, "normalisation (--normalize / --no-normalize)");
    CHECK_INT(out, "truncate", id->truncate, "truncation (--no-truncate)");
    CHECK_STR(out, "device", id->device, "the device kind (--device)");
    CHECK_STR(out, "dtype", id->dtype, "the compute dtype (--dtype)");
    if (!what && json_object_get(out, "prompt")) /* before prompts: none */
        CHECK_STR(out, "prompt", id->prompt ? id->prompt : "", "the prompt (--prompt / --prompt-name)");
    if (!what && !json_object_get(out, "prompt") && id->prompt && *id->prompt) {
        what = "the prompt (--prompt / --prompt-name)";
        snprintf(was, sizeof was, "(none)");
        snprintf(now, sizeof now, "%s", id->prompt);
    }
    {
        /* before precisions and dimensions existed: float32 (npy16: float16) at the model's dimension */
        json_t *p = json_object_get(out, "precision");
        const char *want = ember_precision_str(s->o.precision);
        if (!what && p) CHECK_STR(out, "precision", want, "the precision (--precision)");
        if (!what && !p && s->o.precision != (s->o.format == EMBER_OUTPUT_NPY16 ? EMBER_PRECISION_FLOAT16
                                                                                 : EMBER_PRECISION_FLOAT32)) {
            what = "the precision (--precision)";
            snprintf(was, sizeof was, "%s", s->o.format == EMBER_OUTPUT_NPY16 ? "float16" : "float32");
            snprintf(now, sizeof now, "%s", want);
        }
        if (!what && json_object_get(out, "dimensions"))
            CHECK_INT(out, "dimensions", s->out_dim, "the dimensions (--dimensions)");
        if (!what && !json_object_get(out, "dimensions") && s->out_dim != id->dim) {
            what = "the dimensions (--dimensions)";
            snprintf(was, sizeof was, "%d", id->dim);
            snprintf(now, sizeof now, "%d", s->out_dim);
        }
    }
    if (!what) {
        json_t *f = json_object_get(in, "jsonl_field");
        const char *old = json_string_value(f);
        if ((old == NULL) != (id->jsonl_field == NULL) || (old && strcmp(old, id->jsonl_field) != 0)) {
            what = "the input format (--jsonl / --field)";
            snprintf(was, sizeof was, "%s", old ? old : "text lines");
            snprintf(now, sizeof now, "%s", id->jsonl_field ? id->jsonl_field : "text lines");
        }
    }
    if (!what && id->input_size >= 0) {
        int64_t old_size;
        if (json_int_at(in, "size", &old_size) && old_size >= 0 && old_size != id->input_size) {
            what = "the input's size";
            snprintf(was, sizeof was, "%lld bytes", (long long)old_size);
            snprintf(now, sizeof now, "%lld bytes", (long long)id->input_size);
        }
    }
#undef CHECK_STR
#undef CHECK_INT
    if (what) {
        return sink_fail(EMBER_ERR_INVALID_ARGUMENT,
                         "%s: cannot resume: %s differs: the run used %s, this one %s (resume with the options of the "
                         "first run, or write to a new directory)",
                         mpath, what, was, now);
    }
    identity_notes(s, root);
    return 1;
}

/* Parse "shard-NNNNN.<ext>[.partial]"; returns the index or -1. */
static long shard_index(const char *name) {
    if (strncmp(name, "shard-", 6) != 0) return -1;
    char *end;
    long i = strtol(name + 6, &end, 10);
    if (end == name + 6 || *end != '.') return -1;
    return i;
}

/* Remove shard files the manifest does not list (a killed run's partial or
 * uncommitted shards), so the directory holds exactly the manifest's files. */
static int remove_stale(const sink *s) {
    DIR *d = opendir(s->path);
    if (!d) return sink_fail(EMBER_ERR_IO, "%s: cannot read: %s", s->path, strerror(errno));
    struct dirent *e;
    int ok = 1;
    while ((e = readdir(d))) {
        long i = shard_index(e->d_name);
        size_t n = strlen(e->d_name);
        int partial = n > 8 && strcmp(e->d_name + n - 8, ".partial") == 0;
        int manifest_tmp = strcmp(e->d_name, MANIFEST_NAME ".partial") == 0;
        if (manifest_tmp || (i >= 0 && (partial || i >= s->n_shards))) {
            char p[4200];
            dir_file(p, sizeof p, s->path, e->d_name);
            if (unlink(p) != 0) {
                ok = sink_fail(EMBER_ERR_IO, "%s: cannot remove: %s", p, strerror(errno));
            }
        }
    }
    closedir(d);
    return ok;
}

/* Resume: read the manifest, check it, keep the shards that are intact. */
static int manifest_resume(sink *s, int *complete) {
    embed_manifest m;
    if (manifest_read(&m, s->path) != EMBER_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", ember_last_error());
        return sink_fail(ember_error_status(), "%s; cannot resume from it (remove %s to start again)", msg, s->path);
    }
    int ok = 0, damaged = 0;
    if (!identity_check(s, m.root, m.path)) goto done;
    if (m.ranges) { /* the earlier run's ranges, whatever this one was given */
        free(s->ranges);
        if (!(s->ranges = malloc(2 * (size_t)s->out_dim * sizeof *s->ranges))) goto done;
        memcpy(s->ranges, m.ranges, 2 * (size_t)s->out_dim * sizeof *s->ranges);
    }
    for (int32_t i = 0; i < m.n_shards; i++) {
        const shard_rec *r = &m.shards[i];
        char p[4200];
        dir_file(p, sizeof p, s->path, r->file);
        int64_t bytes = -1;
        uint32_t got = 0;
        int readable = file_sync_crc(p, &bytes, &got);
        int64_t npy_rows = r->rows;
        if (readable && bytes == r->bytes && got == r->crc && m.format != EMBER_OUTPUT_JSONL) {
            /* the bytes are the ones recorded; their row count must be too */
            npy_file f;
            npy_rows = npy_map(&f, p) == EMBER_OK ? f.rows : -1;
            if (npy_rows >= 0) npy_unmap(&f);
        }
        if (!readable || bytes != r->bytes || got != r->crc || npy_rows != r->rows) {
            sink_note(s, "%s is %s: redoing it and the shards after it", p,
                      !readable             ? "missing"
                      : bytes != r->bytes   ? "of the wrong size"
                      : got != r->crc       ? "damaged (crc32 differs)"
                                            : "not what the manifest says (its row count differs)");
            damaged = 1;
            break;
        }
        if (!shard_push(s, r)) goto done;
    }
    if (s->n_shards > 0) {
        const shard_rec *last = &s->shards[s->n_shards - 1];
        s->totals = last->totals;
        s->in_crc = last->in_crc;
        s->in_bytes = last->in_bytes;
    }
    s->resume_rows = s->totals.rows;
    *complete = m.complete && !damaged;
    ok = remove_stale(s) && (*complete || manifest_write(s, 0));
done:
    manifest_free(&m);
    return ok;
}

/* A fresh shard directory: absent (made here) or empty. */
static int shard_dir_fresh(sink *s) {
    struct stat st;
    if (stat(s->path, &st) != 0) {
        if (mkdir(s->path, 0777) != 0) {
            return sink_fail(EMBER_ERR_IO, "%s: cannot create the output directory: %s", s->path, strerror(errno));
        }
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        return sink_fail(EMBER_ERR_INVALID_ARGUMENT,
                         "%s: exists and is not a directory (with --shard-rows, -o names a directory)", s->path);
    }
    char mpath[4200];
    dir_file(mpath, sizeof mpath, s->path, MANIFEST_NAME);
    if (access(mpath, F_OK) == 0) {
        return sink_fail(EMBER_ERR_INVALID_ARGUMENT,
                         "%s already holds a run (%s): add --resume to continue it, or remove the directory to start "
                         "again",
                         s->path, MANIFEST_NAME);
    }
    DIR *d = opendir(s->path);
    if (!d) {
        return sink_fail(EMBER_ERR_IO, "%s: cannot read: %s", s->path, strerror(errno));
    }
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d))) {
        /* a run killed while writing its first manifest leaves only this */
        if (strcmp(e->d_name, MANIFEST_NAME ".partial") == 0) {
            char p[4200];
            dir_file(p, sizeof p, s->path, e->d_name);
            unlink(p);
        } else if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0) {
            empty = 0;
        }
    }
    closedir(d);
    if (!empty) {
        return sink_fail(EMBER_ERR_INVALID_ARGUMENT, "%s: the output directory is not empty (and holds no %s)",
                         s->path, MANIFEST_NAME);
    }
    return 1;
}

/* ---- writing ------------------------------------------------------------------- */

static int file_begin(sink *s) {
    if (s->o.shard_rows > 0) {
        char name[64];
        snprintf(name, sizeof name, "shard-%05d.%s", (int)s->n_shards, output_format_ext(s->o.format));
        dir_file(s->target, sizeof s->target, s->path, name);
    } else {
        snprintf(s->target, sizeof s->target, "%s", s->path);
    }
    snprintf(s->partial, sizeof s->partial, "%s.partial", s->target);
    s->cur_rows = 0;
    if (s->o.format == EMBER_OUTPUT_JSONL) {
        s->jf = fopen(s->partial, "wb");
        if (!s->jf) {
            return sink_fail(EMBER_ERR_IO, "%s: cannot create: %s", s->partial, strerror(errno));
        }
    } else if (npy_open(&s->npy, s->partial, precision_npy_dtype(s->o.precision),
                        precision_cols(s->o.precision, s->out_dim)) != EMBER_OK) {
        return 0;
    }
    s->open = 1;
    return 1;
}

/* Close the file being written, make it durable, move it into place and (for
 * a shard) record it in the manifest. */
static int file_commit(sink *s) {
    s->open = 0;
    int ok;
    if (s->o.format == EMBER_OUTPUT_JSONL) {
        ok = fclose(s->jf) == 0;
        s->jf = NULL;
        if (!ok) sink_fail(EMBER_ERR_IO, "%s: write failed: %s", s->partial, strerror(errno));
    } else {
        ok = npy_close(&s->npy) == EMBER_OK;
    }
    shard_rec r;
    memset(&r, 0, sizeof r);
    if (ok && !file_sync_crc(s->partial, &r.bytes, &r.crc)) {
        ok = sink_fail(EMBER_ERR_IO, "%s: cannot sync: %s", s->partial, strerror(errno));
    }
    if (ok && rename(s->partial, s->target) != 0) {
        ok = sink_fail(EMBER_ERR_IO, "%s: cannot rename to %s: %s", s->partial, s->target, strerror(errno));
    }
    if (!ok) {
        unlink(s->partial);
        return 0;
    }
    /* one file of compact vectors: what they are, beside it */
    if (s->o.shard_rows <= 0 && s->o.precision != EMBER_PRECISION_FLOAT32 && s->o.precision != EMBER_PRECISION_FLOAT16 &&
        sidecar_write(s->target, s->o.precision, s->out_dim, s->o.id.model_name, s->o.id.dim, s->o.id.pooling,
                      s->o.id.normalize, s->ranges) != EMBER_OK)
        return 0;
    if (s->o.shard_rows <= 0) {
        /* the directory holding the file, so that the rename is durable */
        char dir[4200];
        snprintf(dir, sizeof dir, "%s", s->target);
        char *slash = strrchr(dir, '/');
        if (slash == dir) dir[1] = '\0';
        else if (slash) *slash = '\0';
        else snprintf(dir, sizeof dir, ".");
        dir_sync(dir);
        return 1;
    }
    const char *base = strrchr(s->target, '/');
    snprintf(r.file, sizeof r.file, "%s", base ? base + 1 : s->target);
    r.rows = s->cur_rows;
    r.in_bytes = s->in_bytes;
    r.in_crc = s->in_crc;
    r.totals = s->totals;
    return shard_push(s, &r) && manifest_write(s, 0);
}

/* One stored row as "[v0,v1,...]\n": floats with %.9g (every float back
 * exactly; NaN and infinities, from weights holding them, as JSON's null),
 * integers as they are; returns its length. */
static size_t jsonl_float(char *out, float v) {
    return isfinite(v) ? (size_t)sprintf(out, "%.9g", v) : (size_t)(memcpy(out, "null", 4), 4);
}

static size_t jsonl_format(char *out, const void *row, int64_t cols, ember_precision p) {
    size_t n = 0;
    out[n++] = '[';
    for (int64_t k = 0; k < cols; k++) {
        if (k) out[n++] = ',';
        switch (precision_npy_dtype(p)) {
        case NPY_F32: n += jsonl_float(out + n, ((const float *)row)[k]); break;
        case NPY_F16: n += jsonl_float(out + n, f16_to_f32(((const uint16_t *)row)[k])); break;
        case NPY_I8: n += (size_t)sprintf(out + n, "%d", ((const int8_t *)row)[k]); break;
        case NPY_U8: n += (size_t)sprintf(out + n, "%u", ((const uint8_t *)row)[k]); break;
        }
    }
    out[n++] = ']';
    out[n++] = '\n';
    return n;
}

/* JSONL rows, formatted in parallel and written in order: printf's %.9g
 * takes ~0.3 us a number, which alone held a GPU run to 9k rows/s. */
static int jsonl_rows(FILE *f, const void *rows, int32_t n, int64_t cols, ember_precision p) {
    enum { BLOCK = 1024 };
    const size_t row_cap = (size_t)cols * 16 + 4; /* ",-1.23456789e-38" is 16 characters */
    const size_t row_bytes = (size_t)cols * npy_dtype_size(precision_npy_dtype(p));
    char *buf = malloc(BLOCK * row_cap);
    size_t *lens = malloc(BLOCK * sizeof *lens);
    int ok = buf && lens;
    for (int32_t i0 = 0; ok && i0 < n; i0 += BLOCK) {
        const int32_t k = n - i0 < BLOCK ? n - i0 : BLOCK;
#pragma omp parallel for schedule(static) if (k >= 64)
        for (int32_t r = 0; r < k; r++)
            lens[r] = jsonl_format(buf + (size_t)r * row_cap, (const char *)rows + (size_t)(i0 + r) * row_bytes, cols, p);
        for (int32_t r = 0; r < k; r++) fwrite(buf + (size_t)r * row_cap, 1, lens[r], f);
        ok = !ferror(f);
    }
    free(buf);
    free(lens);
    return ok;
}

/* n rows of the model's dimension as they are stored: cut to out_dim (and
 * normalised again), in the output's precision; the ranges of int8 / uint8
 * taken from these rows when none were given (the first window). */
static const void *rows_stored(sink *s, const float *v, int32_t n) {
    const int32_t D = s->dim, d = s->out_dim;
    const ember_precision p = s->o.precision;
    if (d == D && p == EMBER_PRECISION_FLOAT32) return v;
    if ((size_t)n > s->rowbuf_rows) {
        float *rb = realloc(s->rowbuf, (size_t)n * d * sizeof *rb);
        if (rb) s->rowbuf = rb;
        void *qb = realloc(s->qbuf, (size_t)n * precision_row_bytes(p, d));
        if (qb) s->qbuf = qb;
        if (!rb || !qb) {
            sink_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory for %d rows", n);
            return NULL;
        }
        s->rowbuf_rows = (size_t)n;
    }
    const float *t = v;
    if (d < D) {
        for (int32_t i = 0; i < n; i++)
            vec_truncate(s->rowbuf + (size_t)i * d, v + (size_t)i * D, d, s->o.normalize);
        t = s->rowbuf;
    }
    if (p == EMBER_PRECISION_FLOAT32) return t;
    if (precision_needs_ranges(p) && !s->ranges) {
        if (!(s->ranges = malloc(2 * (size_t)d * sizeof *s->ranges))) {
            sink_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
            return NULL;
        }
        ranges_init(s->ranges, d);
        ranges_update(s->ranges, t, n, d);
        sink_note(s, "%s ranges from the first %d rows of this run (recorded in %s)", ember_precision_str(p), n,
                  s->o.shard_rows > 0 ? MANIFEST_NAME : "OUTPUT.json beside the output");
    }
    quantize_rows(s->qbuf, t, n, d, p, s->ranges);
    return s->qbuf;
}

int sink_write(sink *s, const float *vecs, const row_info *info, int32_t n) {
    const void *stored = rows_stored(s, vecs, n);
    if (!stored) return 0;
    const int64_t cols = precision_cols(s->o.precision, s->out_dim);
    const size_t row_bytes = precision_row_bytes(s->o.precision, s->out_dim);
    for (int32_t i = 0; i < n;) {
        if (!s->to_stdout && !s->open && !file_begin(s)) return 0;
        int32_t take = n - i;
        if (s->o.shard_rows > 0 && s->cur_rows + take > s->o.shard_rows) take = (int32_t)(s->o.shard_rows - s->cur_rows);
        const char *v = (const char *)stored + (size_t)i * row_bytes;
        if (s->to_stdout || s->o.format == EMBER_OUTPUT_JSONL) {
            if (!jsonl_rows(s->to_stdout ? stdout : s->jf, v, take, cols, s->o.precision)) {
                return sink_fail(EMBER_ERR_IO, "%s: write failed: %s", s->to_stdout ? "<stdout>" : s->partial,
                                 strerror(errno));
            }
        } else if (npy_write_raw(&s->npy, v, take) != EMBER_OK) {
            return 0;
        }
        for (int32_t k = 0; k < take; k++) {
            const row_info *r = &info[i + k];
            ember_embed_totals *t = &s->totals;
            t->rows++;
            t->tokens += r->n_tokens;
            t->empty += r->empty;
            if (r->truncated && !t->truncated++) t->first_truncated = t->rows;
            if (r->invalid_utf8 && !t->invalid_utf8++) t->first_invalid = t->rows;
        }
        s->in_crc = info[i + take - 1].in_crc;
        s->in_bytes = info[i + take - 1].in_bytes;
        s->cur_rows += take;
        i += take;
        if (s->o.shard_rows > 0 && s->cur_rows == s->o.shard_rows && !file_commit(s)) return 0;
    }
    return 1;
}

/* ---- open / finish ------------------------------------------------------------- */

int sink_open(sink **out, const sink_opts *o, int *already_complete) {
    *out = NULL;
    *already_complete = 0;
    sink *s = calloc(1, sizeof *s);
    if (!s) {
        return sink_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    }
    s->o = *o;
    s->dim = o->id.dim;
    s->out_dim = o->dimensions > 0 && o->dimensions < s->dim ? o->dimensions : s->dim;
    if (o->ranges) {
        if (!(s->ranges = malloc(2 * (size_t)s->out_dim * sizeof *s->ranges))) {
            sink_free(s);
            return sink_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
        }
        memcpy(s->ranges, o->ranges, 2 * (size_t)s->out_dim * sizeof *s->ranges);
    }
    s->to_stdout = !o->path || strcmp(o->path, "-") == 0;
    if (s->to_stdout) {
        *out = s;
        return 1;
    }
    snprintf(s->path, sizeof s->path, "%s", o->path);
    size_t n = strlen(s->path);
    while (n > 1 && s->path[n - 1] == '/') s->path[--n] = '\0';
    int ok;
    if (o->shard_rows > 0) {
        char mpath[4200];
        dir_file(mpath, sizeof mpath, s->path, MANIFEST_NAME);
        if (o->resume && access(mpath, F_OK) == 0) {
            ok = manifest_resume(s, already_complete);
        } else {
            if (o->resume)
                sink_note(s, "nothing to resume in %s: starting from the first row", s->path);
            ok = shard_dir_fresh(s) && manifest_write(s, 0);
        }
    } else {
        /* One file: created now, so that an empty input still gives one. */
        ok = file_begin(s);
    }
    if (!ok) {
        sink_free(s);
        return 0;
    }
    *out = s;
    return 1;
}

void sink_resume_point(const sink *s, int64_t *rows, uint32_t *in_crc, int64_t *in_bytes, int32_t *shards) {
    *rows = s->resume_rows;
    *in_crc = s->in_crc;
    *in_bytes = s->in_bytes;
    *shards = s->n_shards;
}

int sink_finish(sink *s) {
    if (s->to_stdout) {
        if (fflush(stdout) != 0) {
            return sink_fail(EMBER_ERR_IO, "<stdout>: write failed: %s", strerror(errno));
        }
        return 1;
    }
    if (s->open && (s->o.shard_rows <= 0 || s->cur_rows > 0) && !file_commit(s)) return 0;
    if (s->open) { /* a shard opened for no row: nothing to keep */
        sink_abort(s);
    }
    return s->o.shard_rows <= 0 || manifest_write(s, 1);
}

void sink_abort(sink *s) {
    if (!s || !s->open) return;
    s->open = 0;
    if (s->o.format == EMBER_OUTPUT_JSONL) {
        if (s->jf) fclose(s->jf);
        s->jf = NULL;
    } else {
        npy_abandon(&s->npy);
    }
    unlink(s->partial);
}

const ember_embed_totals *sink_get_totals(const sink *s) { return &s->totals; }

const float *sink_ranges(const sink *s) { return s->ranges; }

void sink_committed(const sink *s, int64_t *rows, int32_t *shards) {
    *rows = s->n_shards > 0 ? s->shards[s->n_shards - 1].totals.rows : 0;
    *shards = s->n_shards;
}

void sink_free(sink *s) {
    if (!s) return;
    sink_abort(s);
    free(s->ranges);
    free(s->rowbuf);
    free(s->qbuf);
    free(s->shards);
    free(s);
}
