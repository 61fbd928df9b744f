#include "manifest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/error.h"

static int access_ok(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

const char *output_format_name(ember_output_format f) {
    return f == EMBER_OUTPUT_NPY16 ? "npy16" : f == EMBER_OUTPUT_JSONL ? "jsonl" : "npy";
}

const char *output_format_ext(ember_output_format f) { return f == EMBER_OUTPUT_JSONL ? "jsonl" : "npy"; }

json_t *totals_json(const ember_embed_totals *t) {
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "rows", (json_int_t)t->rows, "tokens",
                     (json_int_t)t->tokens, "empty", (json_int_t)t->empty, "truncated", (json_int_t)t->truncated,
                     "invalid_utf8", (json_int_t)t->invalid_utf8, "first_truncated", (json_int_t)t->first_truncated,
                     "first_invalid", (json_int_t)t->first_invalid);
}

static int int_at(json_t *obj, const char *key, int64_t *out) {
    json_t *v = json_object_get(obj, key);
    if (!json_is_integer(v)) return 0;
    *out = (int64_t)json_integer_value(v);
    return 1;
}

int totals_from_json(json_t *t, ember_embed_totals *out) {
    return json_is_object(t) && int_at(t, "rows", &out->rows) && int_at(t, "tokens", &out->tokens) &&
           int_at(t, "empty", &out->empty) && int_at(t, "truncated", &out->truncated) &&
           int_at(t, "invalid_utf8", &out->invalid_utf8) && int_at(t, "first_truncated", &out->first_truncated) &&
           int_at(t, "first_invalid", &out->first_invalid);
}

json_t *ranges_json(const float *ranges, int32_t d) {
    json_t *lo = json_array(), *hi = json_array();
    for (int32_t k = 0; k < d; k++) {
        /* jansson prints doubles with 17 digits: every float comes back */
        json_array_append_new(lo, json_real(ranges[k]));
        json_array_append_new(hi, json_real(ranges[d + k]));
    }
    return json_pack("{s:o, s:o}", "min", lo, "max", hi);
}

static ember_status read_ranges(embed_manifest *m, json_t *ranges) {
    json_t *lo = json_object_get(ranges, "min"), *hi = json_object_get(ranges, "max");
    if (!json_is_array(lo) || !json_is_array(hi) || json_array_size(lo) != (size_t)m->dim ||
        json_array_size(hi) != (size_t)m->dim)
        return ember_fail(EMBER_ERR_FORMAT, "%s: the ranges must hold %d minima and maxima", m->path, m->dim);
    if (!(m->ranges = malloc(2 * (size_t)m->dim * sizeof *m->ranges)))
        return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    for (int32_t k = 0; k < m->dim; k++) {
        json_t *a = json_array_get(lo, (size_t)k), *b = json_array_get(hi, (size_t)k);
        if (!json_is_number(a) || !json_is_number(b))
            return ember_fail(EMBER_ERR_FORMAT, "%s: ranges entry %d is not a number", m->path, k);
        m->ranges[k] = (float)json_number_value(a);
        m->ranges[m->dim + k] = (float)json_number_value(b);
    }
    return EMBER_OK;
}

/* The output's description; manifests from before precisions and
 * dimensions existed are float32 at the model's dimension. */
static ember_status read_output(embed_manifest *m, json_t *out) {
    const char *fmt = json_string_value(json_object_get(out, "format"));
    if (!fmt) return ember_fail(EMBER_ERR_FORMAT, "%s: output.format is missing", m->path);
    if (strcmp(fmt, "npy") == 0) m->format = EMBER_OUTPUT_NPY;
    else if (strcmp(fmt, "npy16") == 0) m->format = EMBER_OUTPUT_NPY16;
    else if (strcmp(fmt, "jsonl") == 0) m->format = EMBER_OUTPUT_JSONL;
    else return ember_fail(EMBER_ERR_FORMAT, "%s: unknown output.format '%s'", m->path, fmt);
    const char *prec = json_string_value(json_object_get(out, "precision"));
    m->precision = m->format == EMBER_OUTPUT_NPY16 ? EMBER_PRECISION_FLOAT16 : EMBER_PRECISION_FLOAT32;
    if (prec && ember_precision_parse(prec, &m->precision) != EMBER_OK)
        return ember_fail(EMBER_ERR_FORMAT, "%s: unknown output.precision '%s'", m->path, prec);
    int64_t v;
    m->dim = int_at(out, "dimensions", &v) ? (int32_t)v : m->model_dim;
    if (m->dim < 1 || m->dim > m->model_dim)
        return ember_fail(EMBER_ERR_FORMAT, "%s: output.dimensions %d outside 1..%d", m->path, m->dim, m->model_dim);
    m->shard_rows = int_at(out, "shard_rows", &v) ? v : 0;
    m->normalize = json_is_true(json_object_get(out, "normalize"));
    const char *pooling = json_string_value(json_object_get(out, "pooling"));
    if (!pooling || ember_pooling_parse(pooling, &m->pooling) != EMBER_OK) m->pooling = EMBER_POOLING_DEFAULT;
    if (m->precision == EMBER_PRECISION_INT8 || m->precision == EMBER_PRECISION_UINT8)
        return read_ranges(m, json_object_get(out, "ranges"));
    return EMBER_OK;
}

static ember_status read_shards(embed_manifest *m, json_t *shards) {
    m->shards = calloc(json_array_size(shards) + 1, sizeof *m->shards);
    if (!m->shards) return ember_fail(EMBER_ERR_OUT_OF_MEMORY, "out of memory");
    size_t i;
    json_t *js;
    json_array_foreach(shards, i, js) {
        shard_rec *r = &m->shards[i];
        const char *file = json_string_value(json_object_get(js, "file"));
        int64_t crc, in_crc;
        char expect[64];
        snprintf(expect, sizeof expect, "shard-%05zu.%s", i, output_format_ext(m->format));
        if (!file || strcmp(file, expect) != 0 || !int_at(js, "rows", &r->rows) || !int_at(js, "bytes", &r->bytes) ||
            !int_at(js, "crc32", &crc) || !int_at(js, "input_bytes", &r->in_bytes) ||
            !int_at(js, "input_crc32", &in_crc) || !totals_from_json(json_object_get(js, "totals"), &r->totals) ||
            r->rows < 0)
            return ember_fail(EMBER_ERR_FORMAT, "%s: shard entry %zu is malformed", m->path, i);
        snprintf(r->file, sizeof r->file, "%s", file);
        r->crc = (uint32_t)crc;
        r->in_crc = (uint32_t)in_crc;
        m->n_shards++;
        m->rows += r->rows;
    }
    /* The manifest has no checksum of its own: what a hand edit or a torn
     * copy can break, the entries must agree on. Every shard but the last
     * is full, the totals count the rows up to each shard's end, and the
     * input read only grows. */
    int64_t rows = 0, in_bytes = 0;
    for (int32_t k = 0; k < m->n_shards; k++) {
        const shard_rec *r = &m->shards[k];
        rows += r->rows;
        const char *bad = NULL;
        if (m->shard_rows > 0 && (r->rows > m->shard_rows || (k + 1 < m->n_shards && r->rows != m->shard_rows)))
            bad = "its row count does not fit output.shard_rows";
        else if (r->totals.rows != rows) bad = "its totals.rows is not the sum of the rows up to it";
        else if (r->in_bytes < in_bytes || r->bytes < 0) bad = "its byte counts are inconsistent";
        if (bad)
            return ember_fail(EMBER_ERR_FORMAT, "%s: shard entry %d (%s) is inconsistent: %s", m->path, (int)k,
                              r->file, bad);
        in_bytes = r->in_bytes;
    }
    return EMBER_OK;
}

ember_status manifest_read(embed_manifest *m, const char *path) {
    memset(m, 0, sizeof *m);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) snprintf(m->path, sizeof m->path, "%s/%s", path, MANIFEST_NAME);
    else snprintf(m->path, sizeof m->path, "%s", path);
    json_error_t err;
    m->root = json_load_file(m->path, 0, &err);
    if (!m->root) {
        if (stat(m->path, &st) != 0)
            return ember_fail(EMBER_ERR_IO, "%s: no manifest (not a directory of ember embed shards?)", m->path);
        return ember_fail(EMBER_ERR_FORMAT, "%s: cannot read the manifest: %s (line %d)", m->path, err.text,
                          err.line);
    }
    json_t *ver = json_object_get(m->root, "ember_embed_manifest"), *model = json_object_get(m->root, "model");
    json_t *out = json_object_get(m->root, "output"), *shards = json_object_get(m->root, "shards");
    ember_status s = EMBER_OK;
    int64_t dim;
    if (!json_is_integer(ver) || json_integer_value(ver) != MANIFEST_VERSION || !json_is_array(shards) ||
        !json_is_object(model) || !json_is_object(out))
        s = ember_fail(EMBER_ERR_FORMAT, "%s: not an ember embed manifest of version %d", m->path, MANIFEST_VERSION);
    else if (!int_at(model, "dim", &dim) || dim < 1 || dim > 1 << 20)
        s = ember_fail(EMBER_ERR_FORMAT, "%s: model.dim is missing or absurd", m->path);
    if (s) {
        manifest_free(m);
        return s;
    }
    m->complete = json_is_true(json_object_get(m->root, "complete"));
    m->model_name = json_string_value(json_object_get(model, "name"));
    m->model_dir = json_string_value(json_object_get(model, "dir"));
    m->model_dim = (int32_t)dim;
    if ((s = read_output(m, out)) || (s = read_shards(m, shards))) {
        manifest_free(m);
        return s;
    }
    /* a finished run records its totals: "complete" alone (set by hand on a
     * run cut short) is not believed */
    ember_embed_totals t;
    if (m->complete && (!totals_from_json(json_object_get(m->root, "totals"), &t) || t.rows != m->rows)) {
        s = ember_fail(EMBER_ERR_FORMAT, "%s: says complete, but its totals are missing or disagree with its shards",
                       m->path);
        manifest_free(m);
        return s;
    }
    return EMBER_OK;
}

void manifest_free(embed_manifest *m) {
    json_decref(m->root);
    free(m->ranges);
    free(m->shards);
    memset(m, 0, sizeof *m);
}

ember_status sidecar_write(const char *npy_path, ember_precision p, int32_t dim, const char *model_name,
                           int32_t model_dim, const char *pooling, int normalize, const float *ranges) {
    char final[4300], tmp[4400];
    snprintf(final, sizeof final, "%s.json", npy_path);
    snprintf(tmp, sizeof tmp, "%s.partial", final);
    json_t *root = json_pack("{s:i, s:s, s:i, s:{s:s, s:i}, s:s, s:b}", "ember_vectors", 1, "precision",
                             ember_precision_str(p), "dimensions", dim, "model", "name", model_name ? model_name : "",
                             "dim", model_dim, "pooling", pooling ? pooling : "default", "normalize", normalize);
    if (root && ranges) json_object_set_new(root, "ranges", ranges_json(ranges, dim));
    int ok = root && json_dump_file(root, tmp, JSON_INDENT(1)) == 0 && rename(tmp, final) == 0;
    json_decref(root);
    if (!ok) return ember_fail(EMBER_ERR_IO, "%s: cannot write", final);
    return EMBER_OK;
}

ember_status sidecar_read(embed_manifest *m, const char *npy_path) {
    memset(m, 0, sizeof *m);
    snprintf(m->path, sizeof m->path, "%s.json", npy_path);
    json_error_t err;
    if (!(m->root = json_load_file(m->path, 0, &err)))
        return ember_fail(access_ok(m->path) ? EMBER_ERR_FORMAT : EMBER_ERR_IO, "%s: %s", m->path,
                          access_ok(m->path) ? err.text : "missing (it says what the vectors beside it are)");
    json_t *model = json_object_get(m->root, "model");
    const char *prec = json_string_value(json_object_get(m->root, "precision"));
    int64_t dim = 0, mdim = 0;
    ember_status st = EMBER_OK;
    if (!json_is_integer(json_object_get(m->root, "ember_vectors")) || !prec ||
        ember_precision_parse(prec, &m->precision) != EMBER_OK || !int_at(m->root, "dimensions", &dim) || dim < 1 ||
        dim > 1 << 20)
        st = ember_fail(EMBER_ERR_FORMAT, "%s: not a description of ember's vectors", m->path);
    if (!st) {
        m->dim = (int32_t)dim;
        m->model_name = json_string_value(json_object_get(model, "name"));
        m->model_dim = int_at(model, "dim", &mdim) ? (int32_t)mdim : 0;
        m->complete = 1;
        m->normalize = json_is_true(json_object_get(m->root, "normalize"));
        const char *pooling = json_string_value(json_object_get(m->root, "pooling"));
        if (!pooling || ember_pooling_parse(pooling, &m->pooling) != EMBER_OK) m->pooling = EMBER_POOLING_DEFAULT;
        if (m->precision == EMBER_PRECISION_INT8 || m->precision == EMBER_PRECISION_UINT8)
            st = read_ranges(m, json_object_get(m->root, "ranges"));
    }
    if (st) manifest_free(m);
    return st;
}
